"""MOTChallenge-style text files: tracks, ground truth and detections (with optional keypoints).

One line per box, comma separated, frames counted from 1::

    frame, id, x, y, w, h, conf[, x3d, y3d, z3d]                     tracks / detections
    frame, id, x, y, w, h, consider, class, visibility               ground truth (MOT17)
    frame, id, x, y, w, h, conf[, x3d, y3d, z3d], kx1, ky1, kc1, …   detections + 17 keypoints

A line of 58 or 61 values carries 17 COCO keypoints (x, y, c in frame pixels) after the first 7 or
10. Detections have id −1. Ground-truth lines with ``consider`` = 0 are ignored. Errors name the
file and line.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from kpr.errors import DatasetError
from kpr.keypoints.coco import NUM_KEYPOINTS
from kpr.pose.types import Box

_KEYPOINT_VALUES = 3 * NUM_KEYPOINTS
_WITH_KEYPOINTS = (7 + _KEYPOINT_VALUES, 10 + _KEYPOINT_VALUES)


@dataclasses.dataclass(frozen=True, eq=False)
class MotRow:
    """One line: ``frame`` (from 1), ``track_id`` (−1 for detections), ``box`` (x0, y0, x1, y1),
    ``score``, ``keypoints`` [17, 3] or None, and its ``line`` number."""

    frame: int
    track_id: int
    box: Box
    score: float
    keypoints: NDArray[np.float64] | None
    line: int


def read_mot(path: str | Path, ground_truth: bool = False) -> dict[int, list[MotRow]]:
    """Rows of a MOT file grouped by frame (ascending). With ``ground_truth``, lines whose 7th
    value (``consider``) is 0 are left out."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such MOT file") from None
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not a text file ({exc})") from None
    frames: dict[int, list[MotRow]] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split(",")]
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise DatasetError(
                f"{path}:{number}: expected comma-separated numbers, got {raw!r}"
            ) from None
        if len(values) < 6:
            raise DatasetError(
                f"{path}:{number}: expected at least 6 values (frame,id,x,y,w,h), got {len(values)}"
            )
        if not all(map(math.isfinite, values)):
            raise DatasetError(f"{path}:{number}: contains NaN or infinite values")
        frame, track_id, x, y, w, h = values[:6]
        if frame != int(frame) or frame < 1 or track_id != int(track_id):
            raise DatasetError(f"{path}:{number}: frame must be an integer >= 1 and id an integer")
        if w < 0 or h < 0:
            raise DatasetError(f"{path}:{number}: negative box width or height ({w}, {h})")
        score = values[6] if len(values) > 6 else 1.0
        if ground_truth and score == 0:
            continue
        keypoints = None
        if len(values) in _WITH_KEYPOINTS:
            keypoints = np.array(values[-_KEYPOINT_VALUES:]).reshape(NUM_KEYPOINTS, 3)
            keypoints[keypoints[:, 2] <= 0] = 0.0
        row = MotRow(int(frame), int(track_id), (x, y, x + w, y + h), score, keypoints, number)
        frames.setdefault(row.frame, []).append(row)
    return dict(sorted(frames.items()))


def format_mot_line(frame: int, track_id: int, box: Box, score: float) -> str:
    """One track line ``frame,id,x,y,w,h,conf,-1,-1,-1`` (MOTChallenge submission layout)."""
    x0, y0, x1, y1 = box
    return (
        f"{frame},{track_id},{x0:.2f},{y0:.2f},{x1 - x0:.2f},{y1 - y0:.2f},{score:.4f},-1,-1,-1\n"
    )
