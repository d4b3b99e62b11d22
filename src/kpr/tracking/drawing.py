"""Annotated frames: each tracked person's box, id and skeleton in a colour of its id."""

from __future__ import annotations

import colorsys
from collections.abc import Sequence

import cv2
import numpy as np
from numpy.typing import NDArray

from kpr.keypoints.coco import SKELETON_EDGES
from kpr.keypoints.prompts import VISIBILITY_THRESHOLD
from kpr.pose.types import Box

RGB = tuple[int, int, int]


def id_colour(track_id: int) -> RGB:
    """A bright colour per id; consecutive ids get far-apart hues (golden-ratio steps)."""
    hue = (track_id * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 1.0)
    return int(r * 255), int(g * 255), int(b * 255)


def draw_tracks(
    frame: NDArray[np.uint8],
    boxes: Sequence[Box],
    track_ids: Sequence[int],
    keypoints: Sequence[NDArray[np.float64]] | None = None,
    label: str | None = None,
) -> NDArray[np.uint8]:
    """A copy of ``frame`` [H, W, 3] RGB with boxes, ``#id`` tags and skeletons ([17, 3] each,
    points with c > 0.3 drawn); ``label`` is written in the top-left corner."""
    out = np.ascontiguousarray(frame.copy())
    scale = max(1.0, max(out.shape[:2]) / 400.0)
    thick = max(1, int(round(scale)))
    for i, (box, tid) in enumerate(zip(boxes, track_ids, strict=True)):
        colour = id_colour(tid)
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        cv2.rectangle(out, (x0, y0), (x1, y1), colour, thick, cv2.LINE_AA)
        if keypoints is not None:
            kps = keypoints[i]
            shown = kps[:, 2] > VISIBILITY_THRESHOLD
            pts = [(int(round(x)), int(round(y))) for x, y, _ in kps]
            for a, b in SKELETON_EDGES:
                if shown[a] and shown[b]:
                    cv2.line(out, pts[a], pts[b], colour, thick, cv2.LINE_AA)
            for k in np.flatnonzero(shown):
                cv2.circle(out, pts[k], thick + 1, colour, -1, cv2.LINE_AA)
        text = f"#{tid}"
        font = 0.35 * scale
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font, 1)
        ty = max(th + 2, y0)
        cv2.rectangle(out, (x0, ty - th - 3), (x0 + tw + 2, ty), colour, -1)
        cv2.putText(
            out, text, (x0 + 1, ty - 2), cv2.FONT_HERSHEY_SIMPLEX, font, (0, 0, 0), 1, cv2.LINE_AA
        )
    if label:
        cv2.putText(
            out,
            label,
            (4, int(14 * scale)),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.4 * scale,
            (255, 255, 255),
            1,
            cv2.LINE_AA,
        )
    return out
