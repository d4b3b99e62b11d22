"""market1501 and occluded_duke: the Market-1501 layout."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from dataset_trees import KP_DIR, MASKS_DIR, pifpaf_entries, write_fields, write_image, write_json

from kpr.data.datasets import build_dataset
from kpr.data.datasets._market_style import parse_market_name
from kpr.data.datasets.market1501 import market1501
from kpr.data.datasets.occluded_duke import occluded_duke
from kpr.errors import BadSampleWarning, DatasetError, ImageReadError, KeypointFormatError
from kpr.keypoints import read_keypoints_file

MARKET = "Market-1501-v15.09.15"


def _names(samples) -> list[str]:
    return sorted(s.image.name for s in samples)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("0002_c1s1_000451_03.jpg", (2, 0)),
        ("-1_c3s1_000026_01.jpg", (-1, 2)),
        ("0000_c6s4_002452_02.jpg", (0, 5)),
        ("0001_c8_f0046182.jpg", (1, 7)),
        ("1500_c6s3_086567_01.jpg", (1500, 5)),
    ],
)
def test_parse_market_name(name: str, expected: tuple[int, int]) -> None:
    assert parse_market_name(name) == expected


@pytest.mark.parametrize("name", ["c1s1_000451.jpg", "0002_s1_000451.jpg", "abc_c1.jpg"])
def test_parse_market_name_rejects(name: str) -> None:
    with pytest.raises(DatasetError, match=name):
        parse_market_name(name)


def test_market_reads_official_layout(market_root: Path) -> None:
    ds = market1501(market_root, verbose=False)
    data = market_root / MARKET
    assert ds.name == "market1501" and ds.num_cameras == 6 and ds.eval_protocol == "market"
    # Train pids relabelled by increasing raw pid: 2 → 0, 7 → 1, 10 → 2.
    assert [(s.image.name, s.pid, s.camid) for s in ds.train] == [
        ("0002_c1s1_000451_03.jpg", 0, 0),
        ("0002_c2s1_000301_01.jpg", 0, 1),
        ("0007_c3s3_077419_03.jpg", 1, 2),
        ("0010_c6s4_002452_02.jpg", 2, 5),
    ]
    assert [s.attributes["raw_pid"] for s in ds.train] == [2, 2, 7, 10]
    assert ds.num_train_pids == 3
    assert [(s.pid, s.camid) for s in ds.query] == [(5, 0), (8, 4)]
    # Junk (-1) is dropped; the distractor keeps pid 0 in the gallery.
    assert {(s.image.name, s.pid, s.camid) for s in ds.gallery} == {
        ("0000_c1s1_000151_01.jpg", 0, 0),
        ("0005_c1s1_001126_04.jpg", 5, 0),
        ("0005_c2s1_001101_02.jpg", 5, 1),
        ("0008_c3s2_012478_01.jpg", 8, 2),
    }
    assert all(s.split == "gallery" for s in ds.gallery)
    sample = ds.train[0]
    assert sample.keypoints == (
        data
        / "external_annotation"
        / KP_DIR
        / "bounding_box_train"
        / "0002_c1s1_000451_03.jpg_keypoints.json"
    )
    assert sample.parsing == (
        data / "masks" / MASKS_DIR / "bounding_box_train" / "0002_c1s1_000451_03.npy"
    )
    assert sample.parsing_format == "pifpaf36"
    # The fixture marks the second skeleton as the target.
    skeletons = read_keypoints_file(sample.keypoints)
    assert skeletons.target[0, 0] == 3.0 and skeletons.num_negatives == 1


def test_market_accepts_the_dataset_dir_as_root(market_root: Path) -> None:
    nested = market1501(market_root, verbose=False)
    direct = build_dataset("market1501", root=market_root / MARKET, verbose=False)
    assert direct.train == nested.train
    assert direct.gallery == nested.gallery


def test_verbose_prints_directory_and_stats(market_root: Path, capsys) -> None:
    market1501(market_root, verbose=True)
    out = capsys.readouterr().out
    assert f"dataset directory {market_root / MARKET}" in out
    assert "1 junk images (pid -1) ignored" in out
    gallery_row = next(line for line in out.splitlines() if " gallery " in line)
    assert gallery_row.split()[-5:] == ["3", "4", "3", "4", "0"]


def test_occluded_duke_layout(duke_root: Path) -> None:
    ds = occluded_duke(duke_root, verbose=False)
    data = duke_root / "Occluded_Duke"
    assert ds.name == "occluded_duke" and ds.num_cameras == 8
    # 0001_c5 has an empty keypoint file: dropped from train (filter_out_no_skeletons).
    assert [(s.image.name, s.pid, s.camid) for s in ds.train] == [
        ("0001_c2_f0046182.jpg", 0, 1),
        ("0003_c8_f0044701.jpg", 1, 7),
    ]
    assert ds.train[0].parsing == (
        data
        / "masks"
        / MASKS_DIR
        / "bounding_box_train"
        / "0001_c2_f0046182.jpg.confidence_fields.npy"
    )
    assert ds.train[0].keypoints.parent == (
        data / "external_annotation" / (KP_DIR + "_v3") / "bounding_box_train"
    )
    assert [(s.pid, s.camid) for s in ds.query] == [(11, 0)]
    assert sorted((s.pid, s.camid) for s in ds.gallery) == [(0, 3), (11, 6)]
    kept = occluded_duke(duke_root, drop_train_without_keypoints=False, verbose=False)
    assert len(kept.train) == 3


def test_empty_keypoint_file_is_kept_outside_train(duke_root: Path) -> None:
    folder = duke_root / "Occluded_Duke" / "external_annotation" / (KP_DIR + "_v3") / "query"
    write_json(folder / "0011_c1_f0057700.jpg_keypoints.json", None)
    ds = occluded_duke(duke_root, verbose=False)
    assert len(ds.query) == 1


# --- bad input ------------------------------------------------------------------------------


def test_missing_root(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(DatasetError, match=str(missing)):
        market1501(missing, verbose=False)


def test_root_without_the_layout(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="Market-1501-v15.09.15"):
        market1501(tmp_path, verbose=False)


def test_missing_split_folder(market_root: Path) -> None:
    query = market_root / MARKET / "query"
    for f in query.iterdir():
        f.unlink()
    query.rmdir()
    with pytest.raises(DatasetError, match=f"missing query split folder: {query}"):
        market1501(market_root, verbose=False)


def test_missing_keypoint_split_folder(market_root: Path) -> None:
    folder = market_root / MARKET / "external_annotation" / KP_DIR / "query"
    for f in folder.iterdir():
        f.unlink()
    folder.rmdir()
    with pytest.raises(DatasetError, match=str(folder)):
        market1501(market_root, verbose=False)


def test_keypoint_file_without_image(market_root: Path) -> None:
    orphan = (
        market_root
        / MARKET
        / "external_annotation"
        / KP_DIR
        / "query"
        / "0099_c2s1_000001_00.jpg_keypoints.json"
    )
    write_json(orphan, pifpaf_entries())
    with pytest.raises(DatasetError, match="does not pair with any image") as info:
        market1501(market_root, verbose=False)
    assert str(orphan) in str(info.value)
    with pytest.warns(BadSampleWarning, match="skipped 1 bad sample"):
        ds = market1501(market_root, on_bad_sample="skip", verbose=False)
    assert len(ds.query) == 2


def test_image_without_keypoint_file(market_root: Path) -> None:
    kp = (
        market_root
        / MARKET
        / "external_annotation"
        / KP_DIR
        / "query"
        / "0005_c1s1_001051_00.jpg_keypoints.json"
    )
    kp.unlink()
    with pytest.raises(DatasetError, match=f"missing keypoints file {kp}"):
        market1501(market_root, verbose=False)
    with pytest.warns(BadSampleWarning, match="skipped 1 bad sample"):
        ds = market1501(market_root, on_bad_sample="skip", verbose=False)
    assert _names(ds.query) == ["0008_c5s1_009751_00.jpg"]


def test_corrupt_image_error_or_counted_skip(market_root: Path) -> None:
    bad_one = market_root / MARKET / "bounding_box_test" / "0005_c2s1_001101_02.jpg"
    bad_two = market_root / MARKET / "bounding_box_train" / "0007_c3s3_077419_03.jpg"
    bad_one.write_bytes(b"not a jpeg")
    bad_two.write_bytes(b"")
    with pytest.raises(ImageReadError, match=str(bad_two)):
        market1501(market_root, verbose=False)
    with pytest.warns(BadSampleWarning, match=r"skipped 2 bad sample\(s\).*and 1 more"):
        ds = market1501(market_root, on_bad_sample="skip", verbose=False)
    assert "0007_c3s3_077419_03.jpg" not in _names(ds.train)
    assert "0005_c2s1_001101_02.jpg" not in _names(ds.gallery)
    # Pid 10 is now the second training identity.
    assert [s.pid for s in ds.train] == [0, 0, 1]
    # Without verification the corrupt files are not opened.
    assert len(market1501(market_root, verify=False, verbose=False).train) == 4


def test_malformed_keypoint_file(market_root: Path) -> None:
    kp = (
        market_root
        / MARKET
        / "external_annotation"
        / KP_DIR
        / "bounding_box_train"
        / "0002_c1s1_000451_03.jpg_keypoints.json"
    )
    write_json(kp, [{"keypoints": [1.0, 2.0]}])
    with pytest.raises(KeypointFormatError, match=str(kp)):
        market1501(market_root, verbose=False)


def test_parsing_file_of_wrong_shape(market_root: Path) -> None:
    mask = market_root / MARKET / "masks" / MASKS_DIR / "query" / "0008_c5s1_009751_00.npy"
    write_fields(mask, (17, 8, 4))
    with pytest.raises(DatasetError, match=rf"{mask}: parsing labels have shape \[17, 8, 4\]"):
        market1501(market_root, verbose=False)
    with pytest.warns(BadSampleWarning, match="skipped 1 bad sample"):
        ds = market1501(market_root, on_bad_sample="skip", verbose=False)
    assert _names(ds.query) == ["0005_c1s1_001051_00.jpg"]
    np.save(mask, np.zeros((36, 8), dtype=np.float32))
    with pytest.raises(DatasetError, match=str(mask)):
        market1501(market_root, verbose=False)


def test_unparsable_name_and_camera_out_of_range(market_root: Path) -> None:
    write_image(market_root / MARKET / "query" / "readme.jpg")
    with pytest.raises(DatasetError, match="readme.jpg"):
        market1501(market_root, keypoints_dir=None, masks_dir=None, verbose=False)
    (market_root / MARKET / "query" / "readme.jpg").unlink()
    write_image(market_root / MARKET / "query" / "0005_c7s1_000001_00.jpg")
    with pytest.raises(DatasetError, match="camera c7 is outside c1..c6"):
        market1501(market_root, keypoints_dir=None, masks_dir=None, verbose=False)


def test_absent_annotation_folders_give_samples_without_them(market_root: Path) -> None:
    with pytest.warns(UserWarning, match="no keypoints folder at .*other_dir"):
        ds = market1501(market_root, keypoints_dir="other_dir", verbose=False)
    assert all(s.keypoints is None for s in ds.train + list(ds.query) + list(ds.gallery))
    assert all(s.parsing is not None for s in ds.train)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = market1501(market_root, keypoints_dir=None, masks_dir=None, verbose=False)
    assert all(s.keypoints is None and s.parsing_format is None for s in ds.gallery)


def test_invalid_policy(market_root: Path) -> None:
    with pytest.raises(ValueError, match="on_bad_sample"):
        market1501(market_root, on_bad_sample="ignore", verbose=False)  # type: ignore[arg-type]
