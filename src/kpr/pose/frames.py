"""Full frames → people (boxes and keypoints): for the tracker and ``person_crops``."""

from __future__ import annotations

import numpy as np

from kpr.imaging import ImageLike, to_rgb_array
from kpr.keypoints.coco import NUM_KEYPOINTS
from kpr.pose.checks import run_detector, run_estimator
from kpr.pose.crops import crop_box
from kpr.pose.errors import CropTooSmallError, PoseError
from kpr.pose.registry import shared_detector, shared_estimator
from kpr.pose.target import choose_target
from kpr.pose.types import Person, PersonDetector, PoseEstimator


def detect_people(
    frame: ImageLike,
    estimator: PoseEstimator | str | None = "mediapipe",
    detector: PersonDetector | str | None = None,
    name: str = "frame",
) -> list[Person]:
    """Find the people in a frame.

    Without a ``detector``, the (multi-person) ``estimator`` runs on the whole frame. With one,
    it is top-down like KPRTrack (detector, then a pose model per box): each box is cropped,
    the estimator runs on the crop, the target rule picks the box's own person among those found,
    and its keypoints are moved back into the frame; the box and score are the detector's. A box
    where nobody is found, or too small for the estimator, keeps zero keypoints; so does every box
    when ``estimator`` is None (boxes only, e.g. ``detector="hog"`` when the pose extra is not
    installed).

    Parameters
    ----------
    frame : image
        Anything ``kpr.imaging.to_rgb_array`` takes.
    estimator, detector : backend, registered name or None
        Names use one shared instance per name (``kpr.pose.registry.shared_estimator``).
    name : str
        How to name the frame in error messages.

    Returns
    -------
    list of Person
        In the frame's pixels.
    """
    if isinstance(estimator, str):
        estimator = shared_estimator(estimator)
    if isinstance(detector, str):
        detector = shared_detector(detector)
    if estimator is None and detector is None:
        raise PoseError(f"{name}: detect_people needs an estimator, a detector, or both")
    rgb = to_rgb_array(frame, name)
    if detector is None:
        return run_estimator(estimator, rgb, name)
    people = []
    for x0, y0, x1, y1, score in run_detector(detector, rgb, name):
        keypoints = np.zeros((NUM_KEYPOINTS, 3))
        if estimator is not None:
            bx0, by0, bx1, by1 = crop_box((x0, y0, x1, y1), rgb.shape[:2])
            crop = rgb[by0:by1, bx0:bx1]
            try:
                found = run_estimator(estimator, crop, f"{name} box {bx0},{by0},{bx1},{by1}")
            except CropTooSmallError:
                found = []
            choice = choose_target([p.keypoints for p in found], crop.shape[:2])
            if choice.index is not None:
                keypoints = found[choice.index].keypoints + np.array([bx0, by0, 0.0])
                keypoints[keypoints[:, 2] == 0] = 0.0
        people.append(Person(keypoints, (x0, y0, x1, y1), score))
    return people
