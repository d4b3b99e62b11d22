"""Name → backend factory registries, so a user's own pose model is one class and one call.

>>> register_estimator("my-pose", MyPose)          # doctest: +SKIP
>>> create_estimator("my-pose", device="cpu")      # doctest: +SKIP  (kwargs go to the factory)
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from kpr.pose.errors import BackendOutputError, PoseError
from kpr.pose.types import PersonDetector, PoseEstimator

EstimatorFactory = Callable[..., PoseEstimator]
DetectorFactory = Callable[..., PersonDetector]


def _mediapipe(**kwargs: Any) -> PoseEstimator:
    from kpr.pose.mediapipe_backend import MediaPipePoseEstimator

    return MediaPipePoseEstimator(**kwargs)


def _hog(**kwargs: Any) -> PersonDetector:
    from kpr.pose.hog import HOGPersonDetector

    return HOGPersonDetector(**kwargs)


# Built-ins import their backend only when created, so a missing extra fails there, clearly.
_ESTIMATORS: dict[str, EstimatorFactory] = {"mediapipe": _mediapipe}
_DETECTORS: dict[str, DetectorFactory] = {"hog": _hog}
# One default-configured instance per name for callers that take names (``detect_people``).
_SHARED: dict[tuple[str, str], Any] = {}


def _register(table: dict, kind: str, name: str, factory: Callable) -> None:
    if not isinstance(name, str) or not name:
        raise PoseError(f"{kind} name must be a non-empty string, got {name!r}")
    if not callable(factory):
        raise PoseError(f"{kind} {name!r}: factory must be callable, got {type(factory).__name__}")
    if name in table:
        warnings.warn(f"{kind} {name!r} is already registered; replacing it", stacklevel=3)
    table[name] = factory
    _SHARED.pop((kind, name), None)


def register_estimator(name: str, factory: EstimatorFactory) -> None:
    """Make ``create_estimator(name, **kwargs)`` return ``factory(**kwargs)`` (a class works).

    Re-registering a name replaces it with a ``UserWarning``."""
    _register(_ESTIMATORS, "pose estimator", name, factory)


def register_detector(name: str, factory: DetectorFactory) -> None:
    """Make ``create_detector(name, **kwargs)`` return ``factory(**kwargs)``; warns on replacing."""
    _register(_DETECTORS, "person detector", name, factory)


def estimator_names() -> list[str]:
    return sorted(_ESTIMATORS)


def detector_names() -> list[str]:
    return sorted(_DETECTORS)


def _create(table: dict, kind: str, method: str, name: str, kwargs: dict) -> Any:
    if name not in table:
        raise PoseError(f"unknown {kind} {name!r}; registered: {', '.join(sorted(table))}")
    backend = table[name](**kwargs)
    if not callable(getattr(backend, method, None)):
        raise BackendOutputError(
            f"{kind} {name!r}: its factory returned a {type(backend).__name__} without a "
            f"{method}() method"
        )
    return backend


def create_estimator(name: str, **kwargs: Any) -> PoseEstimator:
    """A new instance of the pose estimator registered as ``name``.

    Raises
    ------
    PoseError
        Unknown name; ``MissingExtraError`` when the backend's optional dependency is missing.
    """
    return _create(_ESTIMATORS, "pose estimator", "estimate", name, kwargs)


def create_detector(name: str, **kwargs: Any) -> PersonDetector:
    """A new instance of the person detector registered as ``name``."""
    return _create(_DETECTORS, "person detector", "detect", name, kwargs)


def shared_estimator(name: str) -> PoseEstimator:
    """``create_estimator(name)``, created once and reused (until ``name`` is re-registered)."""
    key = ("pose estimator", name)
    if key not in _SHARED:
        _SHARED[key] = create_estimator(name)
    return _SHARED[key]


def shared_detector(name: str) -> PersonDetector:
    """``create_detector(name)``, created once and reused (until ``name`` is re-registered)."""
    key = ("person detector", name)
    if key not in _SHARED:
        _SHARED[key] = create_detector(name)
    return _SHARED[key]
