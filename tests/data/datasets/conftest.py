"""Fixtures: tiny dataset trees in the real on-disk layouts."""

from __future__ import annotations

from pathlib import Path

import pytest
from dataset_trees import (
    DUKE_IMAGES,
    KP_DIR,
    MARKET_IMAGES,
    MASKS_DIR,
    market_style_tree,
    pifpaf_entries,
    posetrack_tree,
    write_fields,
    write_image,
    write_json,
)


@pytest.fixture
def market_root(tmp_path: Path) -> Path:
    market_style_tree(tmp_path, "Market-1501-v15.09.15", MARKET_IMAGES, KP_DIR, ".npy")
    return tmp_path


@pytest.fixture
def duke_root(tmp_path: Path) -> Path:
    data = market_style_tree(
        tmp_path, "Occluded_Duke", DUKE_IMAGES, KP_DIR + "_v3", ".jpg.confidence_fields.npy"
    )
    # An empty PifPaf result: the official filter drops this training image.
    write_json(
        data
        / "external_annotation"
        / (KP_DIR + "_v3")
        / "bounding_box_train"
        / "0001_c5_f0051341.jpg_keypoints.json",
        [],
    )
    return tmp_path


@pytest.fixture
def occluded_reid_root(tmp_path: Path) -> Path:
    data = tmp_path / "Occluded_REID"
    for folder, n in (("occluded_body_images", 2), ("whole_body_images", 3)):
        for pid in (1, 17):
            for k in range(1, n + 1):
                name = f"{pid:03d}_{k:02d}.tif"
                write_image(data / folder / f"{pid:03d}" / name, seed=k)
                write_json(
                    data / "external_annotation" / KP_DIR / folder / f"{name}_keypoints.json",
                    pifpaf_entries(),
                )
                write_fields(data / "masks" / MASKS_DIR / folder / f"{pid:03d}_{k:02d}.npy")
    return tmp_path


@pytest.fixture
def partial_reid_root(tmp_path: Path) -> Path:
    data = tmp_path / "Partial_REID"
    for folder in ("occluded_body_images", "whole_body_images"):
        for pid in (1, 60):
            name = f"{pid:03d}_01.jpg"
            write_image(data / folder / name, seed=pid)
            write_json(data / folder / f"{name}.predictions.json", pifpaf_entries(2, False))
            write_fields(data / folder / f"{name}.confidence_fields.npy")
    return tmp_path


@pytest.fixture
def pt_root(tmp_path: Path) -> Path:
    """``tmp_path/PoseTrack21``: 1 train video (3 frames, persons 11-13), 2 val videos."""
    posetrack_tree(tmp_path)
    return tmp_path
