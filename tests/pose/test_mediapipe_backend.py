"""The MediaPipe backend on real photos: plausible keypoints in hand-set regions, two people,
the offline bundle, the missing-extra message."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pose_helpers import FACE, LEFT_HALF_OF_FACE, UPPER_BODY, hide_mediapipe

from kpr.keypoints.coco import COCO17_NAMES
from kpr.pose import (
    MissingExtraError,
    Person,
    create_estimator,
    detect_people,
    mediapipe_setup,
    person_crops,
    run_estimator,
)

FACE_POINTS = [COCO17_NAMES.index(n) for n in ("nose", "left_eye", "right_eye")]


def inside(points: np.ndarray, region) -> np.ndarray:
    x0, y0, x1, y1 = region
    return (points[:, 0] >= x0) & (points[:, 0] < x1) & (points[:, 1] >= y0) & (points[:, 1] < y1)


def test_portrait_keypoints_fall_in_hand_set_regions(mediapipe_estimator, grace):
    (person,) = run_estimator(mediapipe_estimator, grace, "grace_hopper.jpg")
    kps = person.keypoints
    assert inside(kps[FACE_POINTS], FACE).all()
    assert (kps[FACE_POINTS, 2] > 0.9).all()
    # Sides are the person's: her left eye and shoulder are on the viewer's right.
    assert inside(kps[[1, 3]], LEFT_HALF_OF_FACE).all()
    assert kps[5, 0] > kps[6, 0] and kps[1, 0] > kps[2, 0]
    assert inside(kps[[5, 6]], UPPER_BODY).all()
    # The photo ends at the waist: hips, knees and ankles are not seen.
    assert (kps[11:, 2] < 0.5).all()
    x0, y0, x1, y1 = person.box
    assert 0 <= x0 < FACE[0] and 0 <= y0 < FACE[1] and x1 > FACE[2] and y1 <= 600
    assert 0.0 <= person.score <= 1.0


def test_points_outside_the_crop_are_zeroed(mediapipe_estimator, grace):
    # Her face only: the shoulders and everything below fall outside the image.
    face = np.ascontiguousarray(grace[100:320, 150:380])
    (person,) = run_estimator(mediapipe_estimator, face, "face.jpg")
    kps = person.keypoints
    x0, y0, x1, y1 = FACE
    assert inside(kps[FACE_POINTS], (x0 - 150, y0 - 100, x1 - 150, y1 - 100)).all()
    assert (kps[FACE_POINTS, 2] > 0.9).all()
    assert (kps[[5, 6, 11, 12, 13, 14, 15, 16]] == 0).all()
    assert ((kps[:, 2] >= 0) & (kps[:, 2] <= 1)).all()


def test_two_people_in_a_frame_are_found_separately(mediapipe_estimator, two_people):
    frame, faces = two_people
    people = detect_people(frame, mediapipe_estimator)
    assert len(people) == 2
    noses = np.array([p.keypoints[0, :2] for p in people])
    # One nose in each face, whatever MediaPipe's order.
    hits = np.array([[inside(n[None], f)[0] for f in faces] for n in noses])
    assert hits.sum(axis=0).tolist() == [1, 1] and hits.sum(axis=1).tolist() == [1, 1]
    crops = person_crops(frame, people)
    for crop in crops:
        assert crop.target[0, 2] > 0.9  # own nose kept, in the crop's pixels
        assert 0 <= crop.target[0, 0] < crop.image.shape[1]
        # The boxes overlap, so each person's crop holds some of the other's keypoints.
        assert crop.negatives.shape[0] == 1 and (crop.negatives[0, :, 2] > 0).any()


def test_empty_scene_has_nobody(mediapipe_estimator):
    assert detect_people(np.full((360, 640, 3), 200, np.uint8), mediapipe_estimator) == []


def test_mediapipe_start_up_note_stays_off_the_terminal_after_empty_frames(tmp_path):
    """MediaPipe logs a note about non-square inputs once per process, on the first call that
    finds someone: a video whose first frames are empty must not print it mid-progress-bar."""
    script = f"""
import numpy as np
from pose_helpers import GRACE_HOPPER, paste
from kpr.imaging import read_rgb
from kpr.pose.mediapipe_backend import MediaPipePoseEstimator
frame = np.full((360, 640, 3), 120, np.uint8)
paste(frame, read_rgb(GRACE_HOPPER), 300, 100, 60)
estimator = MediaPipePoseEstimator(cache_dir={str(tmp_path)!r})
found = [len(estimator.estimate(f)) for f in (np.zeros_like(frame), frame, frame)]
print(found)
"""
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parent,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[0, 1, 1]"
    assert "landmark_projection" not in done.stderr and "NORM_RECT" not in done.stderr


def test_top_down_with_a_user_detector_moves_keypoints_into_the_frame(
    mediapipe_estimator, two_people
):
    frame, faces = two_people

    class TwoBoxes:
        def detect(self, image):
            return np.array([[90, 40, 370, 360, 0.9], [300, 40, 580, 360, 0.8]])

    people = detect_people(frame, mediapipe_estimator, TwoBoxes())
    assert [p.box for p in people] == [(90, 40, 370, 360), (300, 40, 580, 360)]
    assert [p.score for p in people] == [0.9, 0.8]
    for person, face in zip(people, faces):
        assert inside(person.keypoints[FACE_POINTS], face).all()


def test_boxes_only_without_an_estimator(two_people):
    class OneBox:
        def detect(self, image):
            return np.array([[10, 20, 110, 220, 1.5]])

    (person,) = detect_people(two_people[0], estimator=None, detector=OneBox())
    assert isinstance(person, Person) and person.box == (10, 20, 110, 220)
    assert (person.keypoints == 0).all()


def test_bundle_is_built_once_from_the_wheel_and_reused(tmp_path):
    first = mediapipe_setup.pose_landmarker_bundle(tmp_path)
    stat = first.stat()
    assert first.parent == tmp_path and first.suffix == ".task"
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no temporary file left
    again = mediapipe_setup.pose_landmarker_bundle(tmp_path)
    assert again == first and again.stat().st_mtime_ns == stat.st_mtime_ns
    import zipfile

    with zipfile.ZipFile(first) as bundle:
        assert sorted(bundle.namelist()) == [
            "pose_detector.tflite",
            "pose_landmarks_detector.tflite",
        ]


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("KPR_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert mediapipe_setup.default_cache_dir() == tmp_path / "xdg" / "kpr"
    monkeypatch.setenv("KPR_CACHE_DIR", str(tmp_path / "mine"))
    assert mediapipe_setup.default_cache_dir() == tmp_path / "mine"


def test_missing_extra_is_one_line_with_the_install_command(monkeypatch):
    hide_mediapipe(monkeypatch)
    with pytest.raises(MissingExtraError) as err:
        create_estimator("mediapipe")
    message = str(err.value)
    assert "\n" not in message
    assert 'pip install "kpr[pose]" && pip install --no-deps mediapipe==0.10.21' in message


def test_protobuf_shim_gives_mediapipe_the_old_api():
    from google.protobuf import message_factory
    from google.protobuf.timestamp_pb2 import Timestamp

    mediapipe_setup.import_mediapipe()
    factory = message_factory.MessageFactory()
    assert factory.GetPrototype(Timestamp.DESCRIPTOR) is message_factory.GetMessageClass(
        Timestamp.DESCRIPTOR
    )
