"""Stand-ins for the tracker tests: a predictor whose embedding is a crop's mean colour, and
frames of coloured rectangles."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kpr.pose import Person
from kpr.predictor import Embeddings


class ColourPredictor:
    """Embeds a crop as its normalised mean colour in both slots (S = 2, D = 3); records calls."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def embed(self, images, keypoints=None, negative_keypoints=None, *, batch_size=32):
        self.calls.append(
            {"n": len(images), "keypoints": keypoints, "negatives": negative_keypoints}
        )
        means = torch.tensor(
            np.stack([im.reshape(-1, 3).mean(0) for im in images]), dtype=torch.float32
        )
        unit = torch.nn.functional.normalize(means + 1e-3, dim=-1)
        emb = torch.stack([unit, unit], dim=1)
        prompted = torch.tensor([k is not None for k in (keypoints or [None] * len(images))])
        return Embeddings(emb, torch.ones(len(images), 2, dtype=torch.bool), prompted)


def skeleton_in(box, c: float = 1.0) -> np.ndarray:
    """[17, 3] keypoints spread inside ``box``."""
    x0, y0, x1, y1 = box
    xs = np.linspace(x0 + 2, x1 - 2, 17)
    ys = np.linspace(y0 + 2, y1 - 2, 17)
    return np.stack([xs, ys, np.full(17, c)], axis=1)


def scene(
    people: list[tuple[tuple[int, int, int], tuple[float, float, float, float]]], hw=(100, 200)
):
    """A frame with one filled rectangle per (colour, box), and the matching people."""
    frame = np.zeros((*hw, 3), np.uint8)
    out = []
    for colour, box in people:
        x0, y0, x1, y1 = (int(v) for v in box)
        frame[y0:y1, x0:x1] = colour
        out.append(Person(skeleton_in(box), box, 0.9))
    return frame, out


@pytest.fixture
def colour_predictor() -> ColourPredictor:
    return ColourPredictor()


@pytest.fixture(name="scene")
def scene_fixture():
    return scene
