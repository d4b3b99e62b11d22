"""Fixtures: the Grace Hopper photo, a two-person frame composed from it, the MediaPipe backend."""

from __future__ import annotations

import numpy as np
import pytest
from pose_helpers import FACE, GRACE_HOPPER, moved, paste

from kpr.imaging import read_rgb
from kpr.pose import registry


@pytest.fixture(scope="session")
def grace() -> np.ndarray:
    return read_rgb(GRACE_HOPPER)


@pytest.fixture(scope="session")
def two_people(grace) -> tuple[np.ndarray, list[tuple[float, ...]]]:
    """A 640×360 frame with two Grace Hoppers whose boxes overlap; returns it and their faces."""
    frame = np.full((360, 640, 3), 120, np.uint8)
    faces = []
    for x in (100, 300):
        scale, _ = paste(frame, grace, 300, x, 60)
        faces.append(moved(FACE, scale, x, 60))
    return frame, faces


@pytest.fixture(scope="session")
def mediapipe_estimator(tmp_path_factory):
    from kpr.pose.mediapipe_backend import MediaPipePoseEstimator

    estimator = MediaPipePoseEstimator(cache_dir=tmp_path_factory.mktemp("kpr-cache"))
    yield estimator
    estimator.close()


@pytest.fixture
def clean_registry(monkeypatch):
    """Registrations made by a test are undone after it."""
    monkeypatch.setattr(registry, "_ESTIMATORS", dict(registry._ESTIMATORS))
    monkeypatch.setattr(registry, "_DETECTORS", dict(registry._DETECTORS))
    monkeypatch.setattr(registry, "_SHARED", {})
