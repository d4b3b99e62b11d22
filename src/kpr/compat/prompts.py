"""Migration aid: official keypoint files and prompt tensors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

from kpr.keypoints.io import read_keypoints_file
from kpr.keypoints.prompts import build_prompt


def official_prompt(
    target_kps: ArrayLike | None,
    negative_kps: ArrayLike | None,
    orig_hw: tuple[int, int],
    out_hw: tuple[int, int],
    grouping: str,
) -> np.ndarray:
    """The official [Kp+2, H, W] float64 prompt tensor ([background, negatives, groups…])."""
    return build_prompt(target_kps, negative_kps, grouping, tuple(out_hw), tuple(orig_hw))


def read_official_keypoints(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(target [17, 3], negatives [M, 17, 3]) from any official keypoint file."""
    skeletons = read_keypoints_file(path)
    return skeletons.target, skeletons.negatives
