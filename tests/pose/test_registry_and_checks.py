"""Registry, backend-output checks and the BlazePose → COCO mapping."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from pose_helpers import FixedEstimator, standing

from kpr.keypoints.coco import COCO17_NAMES
from kpr.pose import (
    BLAZEPOSE_NAMES,
    BackendOutputError,
    CropTooSmallError,
    PoseError,
    blazepose_to_coco,
    create_detector,
    create_estimator,
    detector_names,
    estimator_names,
    register_detector,
    register_estimator,
    run_detector,
    run_estimator,
    shared_estimator,
)

IMAGE = np.zeros((64, 32, 3), np.uint8)


def test_builtins_are_listed():
    assert "mediapipe" in estimator_names()
    assert "hog" in detector_names()


def test_register_create_and_warn_on_replacing(clean_registry):
    register_estimator("fixed", FixedEstimator)
    made = create_estimator("fixed", skeletons=[standing(16, 2, 60)])
    assert isinstance(made, FixedEstimator) and len(made.skeletons) == 1
    with pytest.warns(UserWarning, match="'fixed' is already registered"):
        register_estimator("fixed", lambda: FixedEstimator([]))
    assert create_estimator("fixed").skeletons == []


def test_shared_instances_are_reused_until_the_name_is_replaced(clean_registry):
    register_estimator("fixed", FixedEstimator)
    first = shared_estimator("fixed")
    assert shared_estimator("fixed") is first
    with pytest.warns(UserWarning):
        register_estimator("fixed", FixedEstimator)
    assert shared_estimator("fixed") is not first


def test_unknown_names_and_bad_factories(clean_registry):
    with pytest.raises(PoseError, match=r"unknown pose estimator 'nope'; registered: .*mediapipe"):
        create_estimator("nope")
    with pytest.raises(PoseError, match="factory must be callable"):
        register_estimator("x", 42)
    register_detector("not-a-detector", FixedEstimator)
    with pytest.raises(BackendOutputError, match=r"without a detect\(\) method"):
        create_detector("not-a-detector")


class WrongShape:
    def estimate(self, image):
        from kpr.pose import Person

        return [Person(np.zeros((16, 3)), (0, 0, 1, 1), 1.0)]


class ReturnsArray:
    def estimate(self, image):
        return np.zeros((1, 17, 3))


class ReturnsTuples:
    def estimate(self, image):
        return [(np.zeros((17, 3)), (0, 0, 1, 1), 1.0)]


@pytest.mark.parametrize(
    ("backend", "message"),
    [
        (WrongShape(), r"crop\.jpg: WrongShape: Person\.keypoints: expected shape .*\[16, 3\]"),
        (ReturnsArray(), r"crop\.jpg: ReturnsArray\.estimate returned ndarray, expected a list"),
        (ReturnsTuples(), r"crop\.jpg: ReturnsTuples\.estimate item 0 is a tuple, expected"),
    ],
)
def test_malformed_backend_output_is_reported_with_the_file_name(backend, message):
    with pytest.raises(BackendOutputError, match=message):
        run_estimator(backend, IMAGE, "crop.jpg")


def test_images_below_min_side_are_refused_before_the_backend_runs():
    backend = FixedEstimator()
    backend.min_side = 40
    with pytest.raises(CropTooSmallError, match=r"tiny\.png: image is 32×64 px, .*at least 40 px"):
        run_estimator(backend, IMAGE, "tiny.png")
    assert backend.calls == 0
    assert run_estimator(FixedEstimator(), IMAGE, "ok.png") == []


class Boxes:
    def __init__(self, out):
        self.out = out

    def detect(self, image):
        return self.out


def test_detector_output_is_checked():
    good = run_detector(Boxes([[1, 2, 3, 4, 0.5]]), IMAGE)
    assert good.dtype == np.float64 and good.shape == (1, 5)
    assert run_detector(Boxes([]), IMAGE).shape == (0, 5)
    with pytest.raises(BackendOutputError, match=r"f\.jpg: Boxes\.detect returned shape \[1, 4\]"):
        run_detector(Boxes([[1, 2, 3, 4]]), IMAGE, "f.jpg")
    with pytest.raises(BackendOutputError, match="inverted"):
        run_detector(Boxes([[5, 2, 3, 4, 1.0]]), IMAGE)


def test_every_coco_keypoint_comes_from_the_same_named_blazepose_landmark():
    landmarks = np.arange(33 * 3, dtype=float).reshape(33, 3)
    coco = blazepose_to_coco(landmarks)
    for k, name in enumerate(COCO17_NAMES):
        np.testing.assert_array_equal(coco[k], landmarks[BLAZEPOSE_NAMES.index(name)])
    # Spot checks against MediaPipe's documented landmark numbers.
    names = ("left_eye", "right_ear", "left_hip", "right_ankle")
    assert [BLAZEPOSE_NAMES.index(n) for n in names] == [
        2, 8, 23, 28,
    ]  # fmt: skip
    with pytest.raises(ValueError, match="33"):
        blazepose_to_coco(np.zeros((17, 3)))


@settings(max_examples=30, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 4), st.just(33), st.integers(1, 5))))
def test_mapping_keeps_leading_and_trailing_axes(landmarks):
    coco = blazepose_to_coco(landmarks)
    assert coco.shape == (landmarks.shape[0], 17, landmarks.shape[2])
    np.testing.assert_array_equal(coco[:, 0], landmarks[:, 0])  # the nose is landmark 0
