"""occluded_reid and partial_reid: test-only sets, occluded queries against whole-body galleries."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from dataset_trees import KP_DIR, MASKS_DIR, pifpaf_entries, write_fields, write_json

from kpr.data.datasets import build_dataset
from kpr.data.datasets._common import parse_prefix_pid
from kpr.data.datasets.occluded_reid import occluded_reid
from kpr.data.datasets.partial_reid import partial_reid
from kpr.errors import BadSampleWarning, DatasetError
from kpr.keypoints import read_keypoints_file


@pytest.mark.parametrize(
    ("name", "pid"), [("001_01.tif", 1), ("017_05.tif", 17), ("060_01.jpg", 60), ("7_x_y.jpg", 7)]
)
def test_parse_prefix_pid(name: str, pid: int) -> None:
    assert parse_prefix_pid(name) == pid


def test_parse_prefix_pid_rejects() -> None:
    with pytest.raises(DatasetError, match="abc_01.tif"):
        parse_prefix_pid("abc_01.tif")


def test_occluded_reid_layout(occluded_reid_root: Path) -> None:
    ds = occluded_reid(occluded_reid_root, verbose=False)
    data = occluded_reid_root / "Occluded_REID"
    assert ds.name == "occluded_reid" and ds.num_cameras == 0 and ds.train == []
    assert [(s.image.name, s.pid, s.camid, s.split) for s in ds.query] == [
        ("001_01.tif", 1, 0, "query"),
        ("001_02.tif", 1, 0, "query"),
        ("017_01.tif", 17, 0, "query"),
        ("017_02.tif", 17, 0, "query"),
    ]
    assert len(ds.gallery) == 6
    assert {(s.pid, s.camid) for s in ds.gallery} == {(1, 1), (17, 1)}
    sample = ds.gallery[-1]
    assert sample.image == data / "whole_body_images" / "017" / "017_03.tif"
    # Keypoint and parsing folders are flat: no per-pid subfolder.
    assert sample.keypoints == (
        data / "external_annotation" / KP_DIR / "whole_body_images" / "017_03.tif_keypoints.json"
    )
    assert sample.parsing == data / "masks" / MASKS_DIR / "whole_body_images" / "017_03.npy"


def test_occluded_reid_missing_gallery_folder(occluded_reid_root: Path) -> None:
    gallery = occluded_reid_root / "Occluded_REID" / "whole_body_images"
    gallery.rename(gallery.with_name("elsewhere"))
    with pytest.raises(DatasetError, match=f"missing gallery split folder: {gallery}"):
        occluded_reid(occluded_reid_root, verbose=False)


def test_occluded_reid_missing_parsing_split_folder(occluded_reid_root: Path) -> None:
    folder = occluded_reid_root / "Occluded_REID" / "masks" / MASKS_DIR / "occluded_body_images"
    folder.rename(folder.with_name("elsewhere"))
    with pytest.raises(DatasetError, match=f"missing query parsing labels folder: {folder}"):
        occluded_reid(occluded_reid_root, verbose=False)


def test_occluded_reid_unpaired_keypoints(occluded_reid_root: Path) -> None:
    folder = occluded_reid_root / "Occluded_REID" / "external_annotation" / KP_DIR
    (folder / "occluded_body_images" / "001_02.tif_keypoints.json").unlink()
    write_json(folder / "whole_body_images" / "099_01.tif_keypoints.json", pifpaf_entries())
    with pytest.warns(BadSampleWarning, match="skipped 2 bad sample"):
        ds = occluded_reid(occluded_reid_root, on_bad_sample="skip", verbose=False)
    assert len(ds.query) == 3 and len(ds.gallery) == 6


def test_partial_reid_layout(partial_reid_root: Path) -> None:
    ds = build_dataset("partial_reid", root=partial_reid_root, verbose=False)
    data = partial_reid_root / "Partial_REID"
    assert ds.name == "partial_reid" and ds.train == [] and ds.num_cameras == 0
    assert [(s.pid, s.camid) for s in ds.query] == [(1, 0), (60, 0)]
    assert [(s.pid, s.camid) for s in ds.gallery] == [(1, 1), (60, 1)]
    sample = ds.query[1]
    assert sample.keypoints == data / "occluded_body_images" / "060_01.jpg.predictions.json"
    assert sample.parsing == data / "occluded_body_images" / "060_01.jpg.confidence_fields.npy"
    # No is_target in PifPaf predictions: the first skeleton is the target.
    assert read_keypoints_file(sample.keypoints).target[0, 0] == 2.0


def test_partial_reid_options_and_bad_input(partial_reid_root: Path) -> None:
    ds = partial_reid(partial_reid_root, keypoints=False, masks=False, verbose=False)
    assert all(s.keypoints is None and s.parsing is None for s in ds.query)
    folder = partial_reid_root / "Partial_REID" / "whole_body_images"
    orphan = folder / "005_01.jpg.predictions.json"
    write_json(orphan, pifpaf_entries(1, False))
    with pytest.raises(DatasetError, match=f"{orphan} does not pair"):
        partial_reid(partial_reid_root, verbose=False)
    orphan.unlink()
    write_fields(folder / "001_01.jpg.confidence_fields.npy", (36, 8))
    with pytest.raises(DatasetError, match="confidence_fields.npy: parsing labels have shape"):
        partial_reid(partial_reid_root, verbose=False)
    np.save(folder / "001_01.jpg.confidence_fields.npy", np.zeros((36, 4, 2)))
    for f in folder.glob("*.predictions.json"):
        f.unlink()
    with pytest.warns(UserWarning, match="no \\*.predictions.json files"):
        ds = partial_reid(partial_reid_root, verbose=False)
    assert all(s.keypoints is None for s in ds.gallery)
    assert all(s.keypoints is not None for s in ds.query)
