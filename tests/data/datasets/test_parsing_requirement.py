"""Official recipes train on the released parsing labels: a dataset without them fails up front."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kpr.data.datasets import build_dataset
from kpr.data.parsing import require_parsing_labels
from kpr.errors import DatasetError


def test_market_without_its_masks_folder_fails_before_training(market_root: Path) -> None:
    require_parsing_labels(build_dataset("market1501", root=market_root, verbose=False))
    shutil.rmtree(market_root / "Market-1501-v15.09.15" / "masks")
    with pytest.warns(UserWarning, match="no parsing labels folder"):
        dataset = build_dataset("market1501", root=market_root, verbose=False)
    with pytest.raises(
        DatasetError,
        match=r"market1501: .* 4 of 4 training images have none .*"
        r"masks/<masks_dir>/<split folder>/",
    ):
        require_parsing_labels(dataset)
