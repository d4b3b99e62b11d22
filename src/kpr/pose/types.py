"""The data type of a person found in an image, and the protocols backends implement."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from kpr.errors import KeypointFormatError
from kpr.keypoints.coco import NUM_KEYPOINTS
from kpr.keypoints.io import validate_keypoints

Box = tuple[float, float, float, float]


def box_around(points: ArrayLike, pad: float = 0.1) -> Box:
    """The (x0, y0, x1, y1) extent of ``points`` [P, 3] with c > 0, grown by ``pad`` × its size on
    every side; (0, 0, 0, 0) when no point has c > 0."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    pts = pts[pts[:, 2] > 0]
    if not len(pts):
        return (0.0, 0.0, 0.0, 0.0)
    (x0, y0), (x1, y1) = pts[:, :2].min(axis=0), pts[:, :2].max(axis=0)
    dx, dy = pad * (x1 - x0), pad * (y1 - y0)
    return (float(x0 - dx), float(y0 - dy), float(x1 + dx), float(y1 + dy))


@dataclass(frozen=True, eq=False)
class Person:
    """One person found in an image.

    Attributes
    ----------
    keypoints : ndarray, shape [17, 3], float64
        COCO-17 (x, y, c) in the image's pixels; c is the backend's confidence, [0, 0, 0] for a
        point the backend did not find.
    box : (x0, y0, x1, y1)
        Bounding box in the image's pixels, x0 <= x1 and y0 <= y1 (may reach past the border).
    score : float
        Detection confidence; its scale is the backend's (see each backend).
    """

    keypoints: NDArray[np.float64]
    box: Box
    score: float

    def __post_init__(self) -> None:
        kps = validate_keypoints(self.keypoints, "Person.keypoints")
        if kps.shape != (NUM_KEYPOINTS, 3):
            raise KeypointFormatError(
                f"Person.keypoints: expected shape [17, 3], got {list(kps.shape)}"
            )
        try:
            box = tuple(float(v) for v in self.box)
            score = float(self.score)
        except (TypeError, ValueError) as exc:
            raise KeypointFormatError(
                f"Person: box must be 4 numbers and score a number: {exc}"
            ) from exc
        if len(box) != 4 or not all(map(math.isfinite, box)) or box[2] < box[0] or box[3] < box[1]:
            raise KeypointFormatError(
                f"Person.box: expected finite (x0, y0, x1, y1), x0 <= x1, y0 <= y1, got {box}"
            )
        if not math.isfinite(score):
            raise KeypointFormatError(f"Person.score: expected a finite number, got {score}")
        kps = kps.copy()
        kps.flags.writeable = False
        object.__setattr__(self, "keypoints", kps)
        object.__setattr__(self, "box", box)
        object.__setattr__(self, "score", score)

    @classmethod
    def from_keypoints(
        cls, keypoints: ArrayLike, score: float | None = None, pad: float = 0.1
    ) -> Person:
        """A person whose box is the padded extent of its found keypoints (``box_around``) and whose
        score, unless given, is the mean confidence of those keypoints."""
        kps = validate_keypoints(keypoints, "keypoints")
        found = kps.reshape(-1, 3)[:, 2] > 0
        if score is None:
            score = float(kps.reshape(-1, 3)[found, 2].mean()) if found.any() else 0.0
        return cls(kps, box_around(kps, pad), score)


@runtime_checkable
class PoseEstimator(Protocol):
    """Image → the people in it, with keypoints.

    ``estimate`` takes an RGB uint8 array [H, W, 3] and returns every person found (possibly
    none). A backend may set ``min_side`` (int): images whose shorter side is below it are
    refused with ``CropTooSmallError`` before ``estimate`` is called.
    """

    def estimate(self, image: NDArray[np.uint8]) -> Sequence[Person]: ...


@runtime_checkable
class PersonDetector(Protocol):
    """Image → person boxes.

    ``detect`` takes an RGB uint8 array [H, W, 3] and returns a float array [N, 5] of
    (x0, y0, x1, y1, score) in the image's pixels (N may be 0).
    """

    def detect(self, image: NDArray[np.uint8]) -> NDArray[np.float64]: ...
