"""Pose front end: people (COCO-17 keypoints, box, score) found in crops and frames, and prompts.

Backends implement ``PoseEstimator`` (image → people) or ``PersonDetector`` (image → boxes) and
are registered by name; built in are ``"mediapipe"`` (multi-person BlazePose, optional extra
``kpr[pose]``) and the ``"hog"`` person detector (OpenCV, no extra).

>>> from kpr.pose import detect_people, person_crops            # doctest: +SKIP
>>> people = detect_people(frame)                               # doctest: +SKIP
>>> for crop in person_crops(frame, people):                    # doctest: +SKIP
...     predictor.embed([crop.image], [crop.target], [crop.negatives])
"""

from __future__ import annotations

from kpr.pose.annotate import (
    AnnotationSummary,
    CropAnnotation,
    CropRecord,
    annotate_crop,
    annotate_crops,
    auto_skeletons,
    keypoint_file_name,
)
from kpr.pose.blazepose import BLAZEPOSE_NAMES, BLAZEPOSE_TO_COCO, blazepose_to_coco
from kpr.pose.checks import run_detector, run_estimator
from kpr.pose.crops import PersonCrop, crop_box, person_crops
from kpr.pose.errors import BackendOutputError, CropTooSmallError, MissingExtraError, PoseError
from kpr.pose.frames import detect_people
from kpr.pose.registry import (
    create_detector,
    create_estimator,
    detector_names,
    estimator_names,
    register_detector,
    register_estimator,
    shared_detector,
    shared_estimator,
)
from kpr.pose.target import AMBIGUITY_MARGIN, TargetChoice, choose_target, head_point
from kpr.pose.types import Box, Person, PersonDetector, PoseEstimator, box_around

__all__ = [
    "AMBIGUITY_MARGIN",
    "BLAZEPOSE_NAMES",
    "BLAZEPOSE_TO_COCO",
    "AnnotationSummary",
    "BackendOutputError",
    "Box",
    "CropAnnotation",
    "CropRecord",
    "CropTooSmallError",
    "MissingExtraError",
    "Person",
    "PersonCrop",
    "PersonDetector",
    "PoseError",
    "PoseEstimator",
    "TargetChoice",
    "annotate_crop",
    "annotate_crops",
    "auto_skeletons",
    "blazepose_to_coco",
    "box_around",
    "choose_target",
    "create_detector",
    "create_estimator",
    "crop_box",
    "detect_people",
    "detector_names",
    "estimator_names",
    "head_point",
    "keypoint_file_name",
    "person_crops",
    "register_detector",
    "register_estimator",
    "run_detector",
    "run_estimator",
    "shared_detector",
    "shared_estimator",
]
