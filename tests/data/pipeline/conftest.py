from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from kpr.data.datasets import build_dataset  # noqa: E402
from kpr.data.samples import ReIDDataset, ReIDSample  # noqa: E402
from kpr.synthetic import SyntheticConfig, generate_synthetic_dataset  # noqa: E402

SYNTH = SyntheticConfig(
    num_images=160, num_train_ids=12, num_test_ids=4, team_size=3, num_cameras=3, seed=3
)


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synthetic_pipeline")
    generate_synthetic_dataset(root, SYNTH, workers=1)
    return root


@pytest.fixture(scope="session")
def synth_datasets(synth_root) -> dict[bool, ReIDDataset]:
    """The synthetic dataset with (True) and without (False) its parsing label maps."""
    return {
        parsing: build_dataset("synthetic", root=synth_root, parsing=parsing, verbose=False)
        for parsing in (True, False)
    }


@pytest.fixture(scope="session")
def train_samples(synth_datasets) -> list[ReIDSample]:
    return list(synth_datasets[True].train)


@pytest.fixture(scope="session")
def split_samples(synth_datasets):
    def make(split: str, with_parsing: bool = True) -> list[ReIDSample]:
        return list(getattr(synth_datasets[with_parsing], split))

    return make
