"""The OpenCV HOG fallback detector (boxes only, no extra)."""

from __future__ import annotations

import cv2
import numpy as np
from pose_helpers import silhouette

from kpr.pose import create_detector, detect_people, run_detector


def scene() -> np.ndarray:
    frame = np.full((360, 640, 3), 200, np.uint8)
    silhouette(frame, 160, 60, 200)
    silhouette(frame, 460, 40, 200)
    return cv2.GaussianBlur(frame, (5, 5), 0)


def test_finds_each_standing_person_once():
    boxes = run_detector(create_detector("hog"), scene())
    assert boxes.shape == (2, 5)
    centres = sorted(((b[0] + b[2]) / 2, (b[1] + b[3]) / 2) for b in boxes)
    assert abs(centres[0][0] - 160) < 30 and abs(centres[1][0] - 460) < 30
    for x0, y0, x1, y1, _ in boxes:
        assert 0 <= x0 < x1 <= 640 and 0 <= y0 < y1 <= 360
        assert y1 - y0 > 150  # covers the 200 px tall person, loosely
    assert boxes[0, 4] >= boxes[1, 4]


def test_nobody_and_tiny_images():
    detector = create_detector("hog")
    assert run_detector(detector, np.full((360, 640, 3), 200, np.uint8)).shape == (0, 5)
    small = run_detector(detector, np.full((40, 30, 3), 200, np.uint8))
    assert small.shape[1] == 5 and ((small[:, 2] <= 30) & (small[:, 3] <= 40)).all()


def test_boxes_only_people_from_detect_people():
    people = detect_people(scene(), estimator=None, detector="hog")
    assert len(people) == 2
    assert all((p.keypoints == 0).all() for p in people)
