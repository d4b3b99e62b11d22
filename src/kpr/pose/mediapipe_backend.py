"""Multi-person MediaPipe pose estimator (Tasks ``PoseLandmarker``, BlazePose full), offline."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator

import numpy as np
from numpy.typing import NDArray

from kpr.imaging import to_rgb_array
from kpr.keypoints.prompts import VISIBILITY_THRESHOLD
from kpr.pose.blazepose import NUM_BLAZEPOSE, blazepose_to_coco
from kpr.pose.errors import PoseError
from kpr.pose.mediapipe_setup import import_mediapipe, pose_landmarker_bundle
from kpr.pose.types import Box, Person, box_around


@contextlib.contextmanager
def _native_stderr_held() -> Iterator[None]:
    """Hold back what native code writes to fd 2 (MediaPipe's start-up log lines); replay it only
    if the block raises, so real errors stay visible."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            held.seek(0)
            sys.stderr.write(held.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _person_box(points: NDArray[np.float64], pad: float, image_hw: tuple[int, int]) -> Box:
    """Box of BlazePose landmarks [33, 3] in pixels: the padded extent of the confident ones,
    raised to cover the head top, clipped to the image."""
    confident = points * (points[:, 2:] > VISIBILITY_THRESHOLD)
    x0, y0, x1, y1 = box_around(confident if confident[:, 2].any() else points, pad)
    nose, left, right = confident[0], confident[11], confident[12]
    if nose[2] and left[2] and right[2]:
        # The landmarks stop at the eyes; the head top is about 0.8 nose-to-shoulders above them.
        top = confident[confident[:, 2] > 0, 1].min()
        y0 = min(y0, top - 0.8 * abs((left[1] + right[1]) / 2 - nose[1]))
    h, w = image_hw
    return (max(0.0, x0), max(0.0, y0), min(float(w), x1), min(float(h), y1))


class MediaPipePoseEstimator:
    """Up to ``num_poses`` people per image with MediaPipe's BlazePose (full) landmarker.

    Keypoints are the 17 COCO rows of the 33 BlazePose landmarks (``blazepose_to_coco``), with
    c = min(visibility, presence) as MediaPipe reports them; landmarks MediaPipe places outside the
    image become [0, 0, 0]. ``box`` is the extent of the landmarks with c > 0.3 (all 33, so heels
    and toes count), padded by ``box_pad`` × its size, raised to cover the head top and clipped to
    the image; ``score`` is the mean c of the 17 COCO keypoints (MediaPipe reports no detection
    score).

    Parameters
    ----------
    num_poses : int
        Most people returned per image.
    min_detection_confidence, min_presence_confidence : float
        MediaPipe's thresholds for its person detector and its landmark model.
    cache_dir : path-like, optional
        Where the ``.task`` bundle is built (``kpr.pose.mediapipe_setup.default_cache_dir()``).
    box_pad : float
    """

    # Below this the landmark model sees a few pixels per limb; 16 px still finds a face.
    min_side = 16

    def __init__(
        self,
        num_poses: int = 6,
        min_detection_confidence: float = 0.5,
        min_presence_confidence: float = 0.5,
        cache_dir: str | os.PathLike[str] | None = None,
        box_pad: float = 0.1,
    ) -> None:
        if num_poses < 1:
            raise PoseError(f"num_poses: must be >= 1, got {num_poses}")
        self._mp = import_mediapipe()
        from mediapipe.tasks.python import BaseOptions, vision

        options = vision.PoseLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=os.fspath(pose_landmarker_bundle(cache_dir))),
            running_mode=vision.RunningMode.IMAGE,
            num_poses=num_poses,
            min_pose_detection_confidence=min_detection_confidence,
            min_pose_presence_confidence=min_presence_confidence,
        )
        with _native_stderr_held():
            self._landmarker = vision.PoseLandmarker.create_from_options(options)
        self._warm = False
        self.box_pad = box_pad

    def estimate(self, image: NDArray[np.uint8]) -> list[Person]:
        """People in an RGB uint8 image [H, W, 3], in MediaPipe's order."""
        rgb = to_rgb_array(image)
        h, w = rgb.shape[:2]
        frame = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=rgb)
        # The first call that finds someone logs a one-off note about non-square inputs (the
        # results are still right); calls that find nobody do not reach that code.
        with _native_stderr_held() if not self._warm else contextlib.nullcontext():
            result = self._landmarker.detect(frame)
        self._warm = self._warm or bool(result.pose_landmarks)
        people = []
        for pose in result.pose_landmarks:
            points = np.array(
                [(p.x * w, p.y * h, min(p.visibility, p.presence)) for p in pose], dtype=np.float64
            ).reshape(NUM_BLAZEPOSE, 3)
            outside = (
                (points[:, 0] < 0) | (points[:, 0] >= w) | (points[:, 1] < 0) | (points[:, 1] >= h)
            )
            points[outside] = 0.0
            box = _person_box(points, self.box_pad, (h, w))
            keypoints = blazepose_to_coco(points)
            people.append(Person(keypoints, box, float(keypoints[:, 2].mean())))
        return people

    def close(self) -> None:
        self._landmarker.close()
