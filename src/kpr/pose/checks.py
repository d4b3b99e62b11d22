"""Calling a backend safely: input size checked before, output types and shapes checked after.

Every caller (``kpr annotate``, ``detect_people``, the predictor) goes through these two functions,
so a user backend that misbehaves is reported once, naming the image and the backend.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from kpr.errors import KPRError
from kpr.imaging import ImageLike, to_rgb_array
from kpr.pose.errors import BackendOutputError, CropTooSmallError, PoseError
from kpr.pose.types import Person, PersonDetector, PoseEstimator


def _backend_name(backend: object) -> str:
    return type(backend).__name__


def check_size(backend: object, image: NDArray[np.uint8], name: str) -> None:
    """Refuse an image whose shorter side is below the backend's ``min_side`` (default 1)."""
    min_side = int(getattr(backend, "min_side", 1))
    h, w = image.shape[:2]
    if min(h, w) < min_side:
        raise CropTooSmallError(
            f"{name}: image is {w}×{h} px, {_backend_name(backend)} needs at least {min_side} px "
            f"on each side"
        )


def _call(backend: object, method: str, image: ImageLike, name: str) -> object:
    """``backend.<method>(rgb)`` after the size check, with its KPRErrors naming the image."""
    rgb = to_rgb_array(image, name)
    check_size(backend, rgb, name)
    try:
        return getattr(backend, method)(rgb)
    except KPRError as exc:
        # A Person built with a wrong shape lands here; a backend's own PoseError keeps its class.
        cls = type(exc) if isinstance(exc, PoseError) else BackendOutputError
        raise cls(f"{name}: {_backend_name(backend)}: {exc}") from exc


def run_estimator(estimator: PoseEstimator, image: ImageLike, name: str = "image") -> list[Person]:
    """``estimator.estimate(image)``, checked; ``image`` is anything ``kpr.imaging.to_rgb_array``
    takes (the backend gets RGB uint8 [H, W, 3]).

    Raises
    ------
    CropTooSmallError
        The image is below ``estimator.min_side``.
    BackendOutputError
        The result is not a sequence of ``Person`` (or building one raised a ``KPRError``).
    """
    people = _call(estimator, "estimate", image, name)
    if isinstance(people, (str, bytes, np.ndarray)) or not hasattr(people, "__len__"):
        raise BackendOutputError(
            f"{name}: {_backend_name(estimator)}.estimate returned {type(people).__name__}, "
            f"expected a list of kpr.pose.Person"
        )
    for i, person in enumerate(people):
        if not isinstance(person, Person):
            raise BackendOutputError(
                f"{name}: {_backend_name(estimator)}.estimate item {i} is a "
                f"{type(person).__name__}, expected kpr.pose.Person"
            )
    return list(people)


def run_detector(
    detector: PersonDetector, image: ImageLike, name: str = "image"
) -> NDArray[np.float64]:
    """``detector.detect(image)``, checked: finite float64 [N, 5] with x0 <= x1 and y0 <= y1."""
    result = _call(detector, "detect", image, name)
    try:
        raw = np.asarray(result)
    except ValueError as exc:  # a ragged list
        raise BackendOutputError(f"{name}: {_backend_name(detector)}.detect: {exc}") from exc
    if raw.size == 0:
        return np.zeros((0, 5))
    if raw.dtype.kind not in "iuf" or raw.ndim != 2 or raw.shape[1] != 5:
        raise BackendOutputError(
            f"{name}: {_backend_name(detector)}.detect returned shape {list(raw.shape)} "
            f"(dtype {raw.dtype}), expected a numeric [N, 5] array of (x0, y0, x1, y1, score)"
        )
    boxes = raw.astype(np.float64)
    if (
        not np.isfinite(boxes).all()
        or (boxes[:, 2] < boxes[:, 0]).any()
        or (boxes[:, 3] < boxes[:, 1]).any()
    ):
        raise BackendOutputError(
            f"{name}: {_backend_name(detector)}.detect returned a non-finite or inverted box"
        )
    return boxes
