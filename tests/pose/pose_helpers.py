"""Hand-made skeletons and backends, and scenes composed from matplotlib's public-domain Grace
Hopper portrait (the only real photo of a person the installed packages ship)."""

from __future__ import annotations

import builtins
import sys
from pathlib import Path

import cv2
import matplotlib
import numpy as np

from kpr.pose import Person

GRACE_HOPPER = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
# Hand-set regions of grace_hopper.jpg (512×600): (x0, y0, x1, y1) in pixels.
FACE = (170, 130, 360, 300)
LEFT_HALF_OF_FACE = (265, 130, 360, 300)  # the person's left is the viewer's right
UPPER_BODY = (0, 280, 512, 600)


def paste(
    canvas: np.ndarray, person: np.ndarray, height: int, x: int, y: int
) -> tuple[float, float]:
    """Paste ``person`` scaled to ``height`` at (x, y), cut by the canvas; returns the scale and the
    x offset so hand-set regions can be moved into the canvas."""
    scale = height / person.shape[0]
    small = cv2.resize(
        person, (round(person.shape[1] * scale), height), interpolation=cv2.INTER_AREA
    )
    h = min(height, canvas.shape[0] - y)
    w = min(small.shape[1], canvas.shape[1] - x)
    canvas[y : y + h, x : x + w] = small[:h, :w]
    return scale, x


def moved(region: tuple[int, int, int, int], scale: float, x: int, y: int) -> tuple[float, ...]:
    x0, y0, x1, y1 = region
    return (x0 * scale + x, y0 * scale + y, x1 * scale + x, y1 * scale + y)


def skeleton(points: dict[int, tuple[float, float]], c: float = 0.9) -> np.ndarray:
    """A [17, 3] skeleton with the given keypoints visible and the others [0, 0, 0]."""
    kps = np.zeros((17, 3))
    for k, (x, y) in points.items():
        kps[k] = (x, y, c)
    return kps


def standing(cx: float, top: float, height: float, c: float = 0.9) -> np.ndarray:
    """A plausible upright skeleton [17, 3], head at ``top``, feet at ``top + height``."""
    rel = {
        0: (0.0, 0.05), 1: (0.03, 0.03), 2: (-0.03, 0.03), 3: (0.06, 0.05), 4: (-0.06, 0.05),
        5: (0.12, 0.2), 6: (-0.12, 0.2), 7: (0.16, 0.35), 8: (-0.16, 0.35), 9: (0.17, 0.48),
        10: (-0.17, 0.48), 11: (0.08, 0.52), 12: (-0.08, 0.52), 13: (0.08, 0.75),
        14: (-0.08, 0.75), 15: (0.08, 0.97), 16: (-0.08, 0.97),
    }  # fmt: skip
    return skeleton({k: (cx + dx * height, top + dy * height) for k, (dx, dy) in rel.items()}, c)


class FixedEstimator:
    """A user backend returning the same hand-made skeletons for every image."""

    def __init__(self, skeletons=()):
        self.skeletons = [np.asarray(s, dtype=float) for s in skeletons]
        self.calls = 0

    def estimate(self, image):
        self.calls += 1
        return [Person.from_keypoints(s) for s in self.skeletons]


def silhouette(canvas: np.ndarray, cx: float, top: float, height: float) -> None:
    """Draw a dark standing-person silhouette (head, torso, arms, legs) for the HOG detector."""
    colour, u = (40, 40, 40), height / 8
    cv2.circle(canvas, (int(cx), int(top + 0.5 * u)), int(0.5 * u), colour, -1)
    cv2.ellipse(
        canvas, (int(cx), int(top + 2.6 * u)), (int(0.9 * u), int(1.6 * u)), 0, 0, 360, colour, -1
    )
    for side in (-1, 1):
        arm = (
            (int(cx + side * 0.8 * u), int(top + 1.4 * u)),
            (int(cx + side * 1.2 * u), int(top + 4.2 * u)),
        )
        leg = (
            (int(cx + side * 0.4 * u), int(top + 4 * u)),
            (int(cx + side * 0.6 * u), int(top + 8 * u)),
        )
        cv2.line(canvas, *arm, colour, int(0.35 * u))
        cv2.line(canvas, *leg, colour, int(0.45 * u))


def hide_mediapipe(monkeypatch) -> None:
    """Make ``import mediapipe`` fail as if the pose extra were not installed."""
    real_import = builtins.__import__

    def no_mediapipe(name, *args, **kwargs):
        if name == "mediapipe" or name.startswith("mediapipe."):
            raise ModuleNotFoundError("No module named 'mediapipe'")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "mediapipe", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_mediapipe)
