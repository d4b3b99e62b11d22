"""The paper's target rule for a crop holding several people.

"When multiple skeletons are detected in an image, we make the assumption the one with its head
closer to the top center part of the image is the intended target" (KPR §4.2). The head is the
mean of the visible face keypoints (nose, eyes, ears); a skeleton whose head is cut off or hidden
falls back to its topmost visible keypoint; a skeleton with no visible keypoint is never chosen
while another one is visible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from kpr.keypoints.coco import COCO17_NAMES
from kpr.keypoints.prompts import VISIBILITY_THRESHOLD

HEAD_KEYPOINTS: tuple[int, ...] = tuple(
    COCO17_NAMES.index(n) for n in ("nose", "left_eye", "right_eye", "left_ear", "right_ear")
)
# Two heads whose distances to the top centre differ by less than this fraction of the crop
# height make the choice ambiguous.
AMBIGUITY_MARGIN = 0.05


@dataclass(frozen=True)
class TargetChoice:
    """Which skeleton of a crop is the target.

    Attributes
    ----------
    index : int or None
        Index of the target skeleton; None when there is no skeleton.
    ambiguous : bool
        The runner-up is within the margin of the target (or no skeleton is visible at all).
    distances : tuple of float
        Per skeleton, the distance of its head to the top centre in crop heights (inf: nothing
        visible).
    """

    index: int | None
    ambiguous: bool
    distances: tuple[float, ...]


def head_point(
    keypoints: ArrayLike, threshold: float = VISIBILITY_THRESHOLD
) -> NDArray[np.float64] | None:
    """(x, y) of a skeleton's head (see module doc) from [17, 3]; None if nothing is visible."""
    kps = np.asarray(keypoints, dtype=np.float64)
    visible = kps[:, 2] > threshold
    head = [k for k in HEAD_KEYPOINTS if visible[k]]
    if head:
        return kps[head, :2].mean(axis=0)
    if visible.any():
        return kps[visible][np.argmin(kps[visible, 1]), :2]
    return None


def choose_target(
    skeletons: ArrayLike,
    image_hw: tuple[int, int],
    margin: float = AMBIGUITY_MARGIN,
    threshold: float = VISIBILITY_THRESHOLD,
) -> TargetChoice:
    """Apply the target rule to the skeletons found in one crop.

    Parameters
    ----------
    skeletons : array_like, shape [N, 17, 3]
        (x, y, c) in the crop's pixels; N may be 0.
    image_hw : (H, W)
        The crop's size; the top centre is (W / 2, 0).
    margin : float
        Ambiguity margin, in crop heights.
    threshold : float
        Keypoints with c <= threshold are not visible (the prompt builder's threshold).

    Returns
    -------
    TargetChoice
        On an exact tie the earlier skeleton wins (and the choice is ambiguous).
    """
    kps = np.asarray(skeletons, dtype=np.float64).reshape(-1, 17, 3)
    h, w = image_hw
    centre = np.array([w / 2.0, 0.0])
    distances = []
    for skeleton in kps:
        head = head_point(skeleton, threshold)
        distances.append(np.inf if head is None else float(np.hypot(*(head - centre)) / h))
    if not distances:
        return TargetChoice(None, False, ())
    order = np.argsort(distances, kind="stable")
    best = distances[order[0]]
    runner_up = distances[order[1]] if len(order) > 1 else np.inf
    ambiguous = bool(np.isinf(best) and len(order) > 1) or bool(runner_up - best < margin)
    return TargetChoice(int(order[0]), ambiguous, tuple(distances))
