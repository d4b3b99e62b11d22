"""Keypoints: COCO-17 layout, body-part groupings, keypoint files and prompt heatmaps."""

from __future__ import annotations

from kpr.keypoints.coco import (
    COCO17_NAMES,
    NUM_KEYPOINTS,
    PIFPAF_CHANNEL_NAMES,
    PIFPAF_CONNECTIONS,
    POSETRACK_NAMES,
    SKELETON_EDGES,
)
from kpr.keypoints.groupings import (
    PROMPT_GROUPINGS,
    TARGET_GROUPINGS,
    Grouping,
    group_channels,
    prompt_channel_names,
    prompt_grouping,
    target_grouping,
)
from kpr.keypoints.io import (
    Skeletons,
    parse_keypoints_json,
    read_keypoints_file,
    validate_keypoints,
    write_keypoints_file,
)
from kpr.keypoints.prompts import (
    GAUSSIAN_SCALE,
    VISIBILITY_THRESHOLD,
    build_prompt,
    empty_prompt,
    gaussian_kernel,
    kernel_radius,
    keypoints_in_frame,
    rescale_keypoints,
)

__all__ = [
    "COCO17_NAMES",
    "GAUSSIAN_SCALE",
    "NUM_KEYPOINTS",
    "PIFPAF_CHANNEL_NAMES",
    "PIFPAF_CONNECTIONS",
    "POSETRACK_NAMES",
    "PROMPT_GROUPINGS",
    "SKELETON_EDGES",
    "TARGET_GROUPINGS",
    "VISIBILITY_THRESHOLD",
    "Grouping",
    "Skeletons",
    "build_prompt",
    "empty_prompt",
    "gaussian_kernel",
    "group_channels",
    "kernel_radius",
    "keypoints_in_frame",
    "parse_keypoints_json",
    "prompt_channel_names",
    "prompt_grouping",
    "read_keypoints_file",
    "rescale_keypoints",
    "target_grouping",
    "validate_keypoints",
    "write_keypoints_file",
]
