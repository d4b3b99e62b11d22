"""COCO-17 keypoint layout and the 36-channel PifPaf field layout of the official label files."""

from __future__ import annotations

COCO17_NAMES: tuple[str, ...] = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)
NUM_KEYPOINTS = 17

# PoseTrack21 stores head_bottom / head_top where COCO has the eyes; they are used positionally.
POSETRACK_NAMES: tuple[str, ...] = (
    COCO17_NAMES[0],
    "head_bottom",
    "head_top",
    *COCO17_NAMES[3:],
)


def _edges(*pairs: tuple[str, str]) -> tuple[tuple[int, int], ...]:
    return tuple((COCO17_NAMES.index(a), COCO17_NAMES.index(b)) for a, b in pairs)


# The 19 limbs of the COCO person skeleton, as (from, to) keypoint indices.
SKELETON_EDGES: tuple[tuple[int, int], ...] = _edges(
    ("left_ankle", "left_knee"),
    ("left_knee", "left_hip"),
    ("right_ankle", "right_knee"),
    ("right_knee", "right_hip"),
    ("left_hip", "right_hip"),
    ("left_shoulder", "left_hip"),
    ("right_shoulder", "right_hip"),
    ("left_shoulder", "right_shoulder"),
    ("left_shoulder", "left_elbow"),
    ("right_shoulder", "right_elbow"),
    ("left_elbow", "left_wrist"),
    ("right_elbow", "right_wrist"),
    ("left_eye", "right_eye"),
    ("nose", "left_eye"),
    ("nose", "right_eye"),
    ("left_eye", "left_ear"),
    ("right_eye", "right_ear"),
    ("left_ear", "left_shoulder"),
    ("right_ear", "right_shoulder"),
)

# PifPaf's CAF fields follow the COCO skeleton in the same order (label channels 17..35).
PIFPAF_CONNECTIONS: tuple[tuple[int, int], ...] = SKELETON_EDGES

PIFPAF_CHANNEL_NAMES: tuple[str, ...] = COCO17_NAMES + tuple(
    f"{COCO17_NAMES[a]}-{COCO17_NAMES[b]}" for a, b in PIFPAF_CONNECTIONS
)
