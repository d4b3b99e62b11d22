"""Drawing primitives: prompts (keypoints coloured by group, negatives red) and heatmap overlays."""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from kpr.keypoints.coco import SKELETON_EDGES
from kpr.keypoints.groupings import Grouping, prompt_grouping

RGB = tuple[int, int, int]
NEGATIVE_COLOUR: RGB = (255, 0, 0)
# Distinct, colour-blind-friendly hues for up to 8 prompt groups (red is kept for negatives).
GROUP_COLOURS: tuple[RGB, ...] = (
    (255, 215, 0),
    (0, 200, 80),
    (0, 190, 255),
    (255, 255, 255),
    (70, 100, 255),
    (230, 0, 230),
    (140, 255, 140),
    (255, 150, 40),
)


def group_colour_per_keypoint(grouping: Grouping | str) -> tuple[RGB, ...]:
    """Colour of each of the 17 keypoints: that of the first prompt group containing it."""
    g = prompt_grouping(grouping) if isinstance(grouping, str) else grouping
    colours: list[RGB] = []
    for k in range(g.num_sources):
        part = next((p for p, members in enumerate(g.members) if k in members), None)
        colours.append(
            GROUP_COLOURS[part % len(GROUP_COLOURS)] if part is not None else (200, 200, 200)
        )
    return tuple(colours)


def _draw_skeleton(
    out: NDArray[np.uint8],
    kps: NDArray,
    colours: tuple[RGB, ...] | None,
    scale: float,
    threshold: float,
) -> None:
    radius = max(2, int(round(0.012 * max(out.shape[:2]))))
    pts = [(int(round(x * scale)), int(round(y * scale))) for x, y, _ in kps]
    shown = kps[:, 2] > threshold
    for a, b in SKELETON_EDGES:
        if shown[a] and shown[b]:
            colour = NEGATIVE_COLOUR if colours is None else colours[a]
            cv2.line(out, pts[a], pts[b], colour, 1, cv2.LINE_AA)
    for k, point in enumerate(pts):
        if shown[k]:
            cv2.circle(
                out,
                point,
                radius,
                NEGATIVE_COLOUR if colours is None else colours[k],
                -1,
                cv2.LINE_AA,
            )


def draw_prompt(
    image: NDArray[np.uint8],
    target: NDArray | None,
    negatives: NDArray | None = None,
    grouping: Grouping | str = "cck8",
    scale: float = 1.0,
    threshold: float = 0.3,
) -> NDArray[np.uint8]:
    """A copy of ``image`` [H, W, 3] RGB with the prompt drawn.

    ``target`` [17, 3] and ``negatives`` [M, 17, 3] are (x, y, c) in pixels of the image before it
    was scaled by ``scale``; points with c ≤ ``threshold`` (not part of the prompt) are not drawn.
    """
    out = np.ascontiguousarray(image.copy())
    for negative in [] if negatives is None else np.asarray(negatives).reshape(-1, 17, 3):
        _draw_skeleton(out, negative, None, scale, threshold)
    if target is not None:
        _draw_skeleton(
            out, np.asarray(target), group_colour_per_keypoint(grouping), scale, threshold
        )
    return out


def overlay_heatmap(
    image: NDArray[np.uint8], heatmap: NDArray, alpha: float = 0.5
) -> NDArray[np.uint8]:
    """Blend a [h, w] map in [0, 1] (resized to the image) over ``image`` [H, W, 3] RGB."""
    resized = cv2.resize(
        np.clip(heatmap, 0.0, 1.0).astype(np.float32), (image.shape[1], image.shape[0])
    )
    colour = cv2.cvtColor(
        cv2.applyColorMap((resized * 255).astype(np.uint8), cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB
    )
    return (image.astype(np.float32) * (1 - alpha) + colour.astype(np.float32) * alpha).astype(
        np.uint8
    )
