"""BlazePose's 33 landmarks (MediaPipe Pose) → the 17 COCO keypoints.

Both layouts name sides from the person's point of view, so left maps to left.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from kpr.keypoints.coco import COCO17_NAMES

BLAZEPOSE_NAMES: tuple[str, ...] = (
    "nose",
    "left_eye_inner", "left_eye", "left_eye_outer",
    "right_eye_inner", "right_eye", "right_eye_outer",
    "left_ear", "right_ear",
    "mouth_left", "mouth_right",
    "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow",
    "left_wrist", "right_wrist",
    "left_pinky", "right_pinky",
    "left_index", "right_index",
    "left_thumb", "right_thumb",
    "left_hip", "right_hip",
    "left_knee", "right_knee",
    "left_ankle", "right_ankle",
    "left_heel", "right_heel",
    "left_foot_index", "right_foot_index",
)  # fmt: skip
NUM_BLAZEPOSE = len(BLAZEPOSE_NAMES)

# Every COCO keypoint has a same-named BlazePose landmark.
BLAZEPOSE_TO_COCO: tuple[int, ...] = tuple(BLAZEPOSE_NAMES.index(name) for name in COCO17_NAMES)


def blazepose_to_coco(landmarks: ArrayLike) -> NDArray[np.float64]:
    """Select the COCO-17 rows of BlazePose landmarks.

    Parameters
    ----------
    landmarks : array_like, shape [..., 33, C]
        Any per-landmark columns (e.g. x, y, confidence).

    Returns
    -------
    ndarray, shape [..., 17, C], float64
    """
    arr = np.asarray(landmarks, dtype=np.float64)
    if arr.ndim < 2 or arr.shape[-2] != NUM_BLAZEPOSE:
        raise ValueError(f"expected [..., 33, C] BlazePose landmarks, got shape {list(arr.shape)}")
    return arr[..., BLAZEPOSE_TO_COCO, :]
