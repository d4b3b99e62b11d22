"""folder and synthetic: the kpr-folder/1 format, with annotations.csv or a file-name pattern."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from dataset_trees import write_image, write_json

from kpr.data.datasets import build_dataset
from kpr.data.datasets.folder import (
    coerce_value,
    compile_filename_pattern,
    folder,
    parse_filename,
    synthetic,
)
from kpr.errors import BadSampleWarning, ConfigError, DatasetError, ImageReadError, KPRError
from kpr.keypoints import write_keypoints_file
from kpr.synthetic import SyntheticConfig, generate_synthetic_dataset

TINY = SyntheticConfig(
    num_images=40, num_train_ids=4, num_test_ids=4, team_size=2, num_cameras=2, seed=3
)
MARKET_PATTERN = r"(?P<pid>-?\d+)_c(?P<camid>\d+)"
CLASSES = ["background", "head", "body"]


@pytest.fixture(scope="module")
def synth_master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth") / "ds"
    generate_synthetic_dataset(root, TINY, workers=1)
    return root


@pytest.fixture
def synth_root(synth_master: Path, tmp_path: Path) -> Path:
    root = tmp_path / "ds"
    shutil.copytree(synth_master, root)
    return root


def _csv_rows(root: Path) -> list[dict[str, str]]:
    with open(root / "annotations.csv", newline="") as f:
        return list(csv.DictReader(f))


def _write_csv(root: Path, rows: list[dict[str, str]], header: list[str] | None = None) -> None:
    with open(root / "annotations.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header or list(rows[0]), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


# --- pure helpers ---------------------------------------------------------------------------


def test_parse_filename() -> None:
    pattern = compile_filename_pattern(MARKET_PATTERN)
    assert parse_filename("0002_c3_17.png", pattern, 1) == (2, 2)
    assert parse_filename("-1_c1s1_000026.jpg", pattern, 1) == (-1, 0)
    assert parse_filename("0042_c0_000001.png", pattern) == (42, 0)
    with pytest.raises(DatasetError, match="does not match"):
        parse_filename("img_17.png", pattern)
    with pytest.raises(DatasetError, match="camid -1 is negative"):
        parse_filename("0002_c0_17.png", pattern, 1)
    loose = compile_filename_pattern(r"(?P<pid>\w+)-(?P<camid>\w+)")
    with pytest.raises(DatasetError, match="not integers"):
        parse_filename("ab-cd.png", loose)


def test_compile_filename_pattern_errors() -> None:
    with pytest.raises(ConfigError, match="missing named group"):
        compile_filename_pattern(r"(?P<pid>\d+)_c(\d+)")
    with pytest.raises(ConfigError, match="invalid regular expression"):
        compile_filename_pattern(r"(?P<pid>\d+")


def test_coerce_value() -> None:
    assert coerce_value("3") == 3 and coerce_value("-1") == -1
    assert coerce_value("0.250000") == 0.25
    assert coerce_value("front") == "front" and coerce_value("") == ""


# --- the synthetic dataset (annotations.csv) ------------------------------------------------


def test_synthetic_dataset(synth_master: Path) -> None:
    ds = build_dataset("synthetic", root=synth_master, verbose=False)
    rows = _csv_rows(synth_master)
    assert ds.name == "synthetic" and ds.eval_protocol == "no_filter" and ds.num_cameras == 0
    assert ds.parsing_classes is not None and ds.parsing_classes[0] == "background"
    for split in ("train", "query", "gallery"):
        mine = [r for r in rows if r["split"] == split]
        samples = getattr(ds, split)
        assert sorted(s.image.relative_to(synth_master).as_posix() for s in samples) == sorted(
            r["image"] for r in mine
        )
    by_image = {synth_master / r["image"]: r for r in rows}
    train_raw = sorted({int(r["pid"]) for r in rows if r["split"] == "train"})
    for s in ds.train:
        row = by_image[s.image]
        assert s.pid == train_raw.index(int(row["pid"]))
        assert s.attributes["raw_pid"] == int(row["pid"])
    for s in list(ds.query) + list(ds.gallery):
        row = by_image[s.image]
        assert (s.pid, s.camid) == (int(row["pid"]), int(row["camid"]))
        assert s.attributes["occ_level"] == float(row["occ_level"])
        assert s.attributes["occlusion"] == row["occlusion"]
        rel = s.image.relative_to(synth_master / "images").with_suffix(".json")
        assert s.keypoints == synth_master / "keypoints" / rel
        assert s.parsing == synth_master / "parsing" / rel.with_suffix(".png")
        assert s.parsing_format == "label_map"


def test_folder_reads_synthetic_with_market_protocol(synth_master: Path) -> None:
    ds = folder(synth_master, verbose=False)
    assert ds.name == "synthetic" and ds.eval_protocol == "market"
    other = folder(synth_master, eval_protocol="no_filter", num_cameras=2, verbose=False)
    assert other.eval_protocol == "no_filter" and other.num_cameras == 2
    with pytest.raises(ConfigError, match="eval_protocol"):
        folder(synth_master, eval_protocol="cuhk", verbose=False)  # type: ignore[arg-type]


def test_synthetic_refuses_another_folder_dataset(synth_root: Path) -> None:
    meta = json.loads((synth_root / "dataset.json").read_text())
    meta["name"] = "my_cameras"
    write_json(synth_root / "dataset.json", meta)
    with pytest.raises(DatasetError, match="'my_cameras', expected 'synthetic'"):
        synthetic(synth_root, verbose=False)
    assert folder(synth_root, verbose=False).name == "my_cameras"


def test_pattern_argument_overrides_the_csv(synth_root: Path) -> None:
    (synth_root / "annotations.csv").write_text("image,split,pid,camid\n")
    ds = folder(synth_root, filename_pattern=MARKET_PATTERN, verbose=False)
    assert len(ds.train) == 20 and len(ds.query) + len(ds.gallery) == 20
    assert all(s.image.name.startswith(f"{s.pid:04d}_c{s.camid}_") for s in ds.gallery)


# --- a user folder with a file-name pattern -------------------------------------------------


def _user_folder(root: Path) -> Path:
    """Market-style names, 1-based cameras, JPEG images, no annotations.csv."""
    names = {
        "train": ["0003_c1_0001.jpg", "0003_c2_0002.jpg", "0009_c1_0003.jpg"],
        "query": ["0004_c1_0004.jpg"],
        "gallery": [
            "0004_c2_0005.jpg",
            "0000_c1_0006.jpg",
            "-1_c2_0007.jpg",
            "sub/0004_c3_0008.jpg",
        ],
    }
    for split, files in names.items():
        for i, name in enumerate(files):
            image = root / "images" / split / name
            write_image(image, (24, 12), seed=i)
            stem = Path(name).with_suffix("")
            target = np.zeros((17, 3))
            target[0] = (5.0, 4.0, 1.0)
            kp = (root / "keypoints" / split / stem).with_suffix(".json")
            kp.parent.mkdir(parents=True, exist_ok=True)
            write_keypoints_file(kp, target)
            labels = np.zeros((24, 12), np.uint8)
            labels[2:10, 3:9] = 1
            labels[10:20, 3:9] = 2
            png = (root / "parsing" / split / stem).with_suffix(".png")
            png.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(png), labels)
    write_json(
        root / "dataset.json",
        {
            "format": "kpr-folder/1",
            "name": "my_cameras",
            "image_size_hw": [24, 12],
            "parsing_classes": CLASSES,
            "keypoint_format": "coco17",
            "filename_pattern": MARKET_PATTERN,
            "camid_base": 1,
        },
    )
    return root


def test_folder_with_filename_pattern(tmp_path: Path) -> None:
    root = _user_folder(tmp_path / "mine")
    ds = build_dataset("folder", root=root, verbose=False)
    assert ds.name == "my_cameras" and ds.parsing_classes == tuple(CLASSES)
    assert [(s.image.name, s.pid, s.camid) for s in ds.train] == [
        ("0003_c1_0001.jpg", 0, 0),
        ("0003_c2_0002.jpg", 0, 1),
        ("0009_c1_0003.jpg", 1, 0),
    ]
    # Junk -1 dropped, distractor 0 kept, images in subfolders mirrored in keypoints/ and parsing/.
    assert sorted((s.pid, s.camid) for s in ds.gallery) == [(0, 0), (4, 1), (4, 2)]
    nested = next(s for s in ds.gallery if s.image.parent.name == "sub")
    assert nested.keypoints == root / "keypoints" / "gallery" / "sub" / "0004_c3_0008.json"
    assert nested.parsing == root / "parsing" / "gallery" / "sub" / "0004_c3_0008.png"
    assert ds.query[0].attributes == {}


def test_folder_bad_input(tmp_path: Path) -> None:
    root = _user_folder(tmp_path / "mine")
    with pytest.raises(DatasetError, match="dataset root does not exist"):
        folder(tmp_path / "missing", verbose=False)
    # Label map of the wrong shape (RGB, or another size).
    png = root / "parsing" / "query" / "0004_c1_0004.png"
    cv2.imwrite(str(png), np.zeros((24, 12, 3), np.uint8))
    with pytest.raises(DatasetError, match=f"{png}: parsing label map has 3 channels"):
        folder(root, verbose=False)
    cv2.imwrite(str(png), np.zeros((12, 12), np.uint8))
    with pytest.raises(DatasetError, match=f"{png}: parsing label map is 12x12"):
        folder(root, verbose=False)
    cv2.imwrite(str(png), np.full((24, 12), 3, np.uint8))
    with pytest.raises(DatasetError, match="label 3 is out of range for 3 parsing_classes"):
        folder(root, verbose=False)
    with pytest.warns(BadSampleWarning, match="skipped 1 bad sample"):
        ds = folder(root, on_bad_sample="skip", verbose=False)
    assert ds.query == []
    png.unlink()
    with pytest.raises(DatasetError, match=f"missing parsing file {png}"):
        folder(root, verbose=False)
    # A corrupt image.
    image = root / "images" / "train" / "0009_c1_0003.jpg"
    image.write_bytes(b"\xff\xd8garbage")
    with pytest.raises(ImageReadError, match=str(image)):
        folder(root, parsing=False, verbose=False)
    # A name the pattern does not match.
    write_image(root / "images" / "train" / "holiday.jpg")
    holiday = root / "images" / "train" / "holiday.jpg"
    with pytest.raises(DatasetError, match=f"{holiday}: file name does not match"):
        folder(root, parsing=False, verbose=False)
    with pytest.warns(BadSampleWarning, match="skipped 2 bad sample"):
        ds = folder(root, parsing=False, on_bad_sample="skip", verbose=False)
    assert [s.image.name for s in ds.train] == ["0003_c1_0001.jpg", "0003_c2_0002.jpg"]


def test_folder_structure_errors(tmp_path: Path) -> None:
    root = _user_folder(tmp_path / "mine")
    meta = json.loads((root / "dataset.json").read_text())
    del meta["filename_pattern"]
    write_json(root / "dataset.json", meta)
    with pytest.raises(DatasetError, match="no .*annotations.csv and no filename_pattern"):
        folder(root, verbose=False)
    write_json(root / "dataset.json", {**meta, "format": "kpr-folder/9"})
    with pytest.raises(DatasetError, match="field 'format'"):
        folder(root, verbose=False)
    write_json(
        root / "dataset.json", {**meta, "filename_pattern": MARKET_PATTERN, "camid_base": "1"}
    )
    with pytest.raises(DatasetError, match="field 'camid_base': expected an integer"):
        folder(root, verbose=False)
    (root / "dataset.json").unlink()
    with pytest.raises(DatasetError, match="dataset.json: missing"):
        folder(root, verbose=False)
    write_json(root / "dataset.json", {**meta, "filename_pattern": MARKET_PATTERN})
    shutil.rmtree(root / "keypoints" / "query")
    missing = root / "keypoints" / "query"
    with pytest.raises(DatasetError, match=f"missing query keypoints folder: {missing}"):
        folder(root, verbose=False)
    shutil.rmtree(root / "images" / "query")
    missing = root / "images" / "query"
    with pytest.raises(DatasetError, match=f"missing query split folder: {missing}"):
        folder(root, verbose=False)


def test_folder_without_train_split_or_side_folders(tmp_path: Path) -> None:
    root = _user_folder(tmp_path / "mine")
    for kind in ("images", "keypoints", "parsing"):
        shutil.rmtree(root / kind / "train")
    shutil.rmtree(root / "parsing")
    shutil.rmtree(root / "keypoints")
    with pytest.warns(UserWarning, match="no keypoints folder"):
        ds = folder(root, verbose=False)
    assert ds.train == [] and len(ds.gallery) == 3
    assert all(s.keypoints is None and s.parsing is None for s in ds.gallery)


def test_csv_errors(synth_root: Path) -> None:
    rows = _csv_rows(synth_root)
    _write_csv(synth_root, rows, ["split", "image", "pid", "camid"])
    with pytest.raises(DatasetError, match="header must start with image,split,pid,camid"):
        folder(synth_root, verbose=False)
    bad_rows = [dict(r) for r in rows]
    bad_rows[0]["split"] = "gallery"  # a train image claimed by the gallery
    bad_rows[1]["pid"] = "seven"
    bad_rows[2]["image"] = "../outside.png"
    _write_csv(synth_root, bad_rows)
    with pytest.raises(DatasetError, match=re.escape(f"{synth_root / 'annotations.csv'}:2: image")):
        folder(synth_root, verbose=False)
    with pytest.warns(BadSampleWarning, match="skipped 4 bad sample"):
        ds = folder(synth_root, on_bad_sample="skip", verbose=False)
    assert len(ds.train) == 17
    # An image on disk that the CSV does not list.
    _write_csv(synth_root, rows[1:])
    with pytest.raises(DatasetError, match="is not listed in"):
        folder(synth_root, verbose=False)
    # A keypoint file without its image.
    _write_csv(synth_root, rows)
    orphan = synth_root / "keypoints" / "gallery" / "9999_c0_999999.json"
    write_keypoints_file(orphan, np.zeros((17, 3)))
    with pytest.raises(DatasetError, match=f"keypoints file {orphan} does not pair"):
        folder(synth_root, verbose=False)


def test_person_masks_are_picked_up(synth_root: Path) -> None:
    data = synthetic(synth_root, verbose=False)
    for sample in (*data.train, *data.query, *data.gallery):
        rel = sample.image.relative_to(synth_root / "images")
        assert sample.masks == synth_root / "masks" / rel
    assert all(s.masks is None for s in synthetic(synth_root, masks=False, verbose=False).train)


def test_a_bad_person_mask_names_the_file_and_values(synth_root: Path) -> None:
    path = next((synth_root / "masks" / "train").glob("*.png"))
    labels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    labels[0, 0] = 7
    cv2.imwrite(str(path), labels)
    with pytest.raises(KPRError, match=rf"{path}: unknown label value\(s\) \[7\]"):
        synthetic(synth_root, verbose=False)
    with pytest.warns(BadSampleWarning):
        data = synthetic(synth_root, on_bad_sample="skip", verbose=False)
    assert all(s.masks != path for s in data.train)


def test_a_person_mask_of_another_size_than_its_image_is_refused(synth_root: Path) -> None:
    path = next((synth_root / "masks" / "query").glob("*.png"))
    cv2.imwrite(str(path), np.zeros((5, 5), np.uint8))
    with pytest.raises(DatasetError, match=rf"{path}: person mask is 5x5 \(HxW\), the image is"):
        synthetic(synth_root, verbose=False)


def test_a_missing_person_mask_is_reported(synth_root: Path) -> None:
    path = next((synth_root / "masks" / "gallery").glob("*.png"))
    path.unlink()
    with pytest.raises(DatasetError, match="missing masks file"):
        synthetic(synth_root, verbose=False)
