"""occluded_posetrack: crops built from a PoseTrack21 tree and the released sampling files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from dataset_trees import V22, pt_det_id, pt_image_id, write_fields, write_json

from kpr.data.datasets import build_dataset
from kpr.data.datasets.occluded_posetrack import (
    clip_box,
    crop_size,
    keypoints_to_crop,
    negative_keypoints,
    occluded_posetrack,
    occlusion_level,
    read_pandas_table,
    select_queries,
)
from kpr.errors import BadSampleWarning, DatasetError
from kpr.imaging import read_rgb

REID = "occluded_posetrack_reid"


def _build(root: Path, **kwargs):
    return occluded_posetrack(root, verbose=False, **kwargs)


def _by_det(samples) -> dict[int, object]:
    return {s.attributes["detection_id"]: s for s in samples}


# --- pure functions -------------------------------------------------------------------------


def test_clip_box() -> None:
    assert clip_box([100, 100, 60, 120], (480, 640)) == (100, 100, 160, 220)
    assert clip_box([-20, 200, 60, 100], (480, 640)) == (0, 200, 40, 300)
    assert clip_box([600, 400, 100, 100], (480, 640)) == (600, 400, 640, 480)
    assert clip_box([10.5, 20.2, 5.0, 5.0], (480, 640)) == (10, 20, 16, 26)
    assert clip_box([700, 10, 20, 20], (480, 640)) is None
    assert clip_box([10, 10, 0, 20], (480, 640)) is None


def test_crop_size_resize_rule() -> None:
    assert crop_size((0, 0, 60, 120)) == (120, 60)
    assert crop_size((0, 0, 128, 384)) == (384, 128)
    assert crop_size((0, 0, 129, 100)) == (384, 128)
    assert crop_size((0, 0, 50, 385)) == (384, 128)


def test_keypoints_to_crop() -> None:
    kps = np.array([[110, 130, 1], [159, 219, 1], [160, 150, 1], [120, 140, 0.0]])
    kps = np.concatenate([kps, np.zeros((13, 3))])
    out = keypoints_to_crop(kps, (100, 100, 160, 220), (120, 60))
    np.testing.assert_allclose(out[:4], [[10, 30, 1], [59, 119, 1], [0, 0, 0], [0, 0, 0]])
    # A 150x420 box written as 128x384: coordinates scale by 128/150 and 384/420.
    resized = keypoints_to_crop(kps, (100, 100, 250, 520), (384, 128))
    np.testing.assert_allclose(resized[0], [10 * 128 / 150, 30 * 384 / 420, 1])


def test_negative_keypoints_drop_empty_skeletons() -> None:
    inside = np.zeros((17, 3))
    inside[:2] = [[120, 130, 1], [500, 130, 1]]
    outside = np.zeros((17, 3))
    outside[0] = [500, 130, 1]
    negs = negative_keypoints(np.stack([inside, outside]), (100, 100, 160, 220), (120, 60))
    assert negs.shape == (1, 17, 3)
    np.testing.assert_allclose(negs[0, :2], [[20, 30, 1], [0, 0, 0]])
    assert negative_keypoints(np.zeros((0, 17, 3)), (0, 0, 5, 5), (5, 5)).shape == (0, 17, 3)


def test_occlusion_level() -> None:
    negs = np.zeros((2, 17, 3))
    negs[0, :3, 2] = 1
    negs[1, :2, 2] = 1
    assert occlusion_level(10, negs) == 0.5
    assert occlusion_level(0, negs) == 10.0
    assert occlusion_level(0, np.zeros((0, 17, 3))) == 0.0


def test_select_queries() -> None:
    dets = [(1, 7, 0.1), (2, 7, 0.9), (3, 7, 0.5), (4, 7, 0.9), (5, 7, 0.0)]
    dets += [(10, 8, 3.0), (11, 8, 1.0), (12, 8, 2.0), (13, 8, 0.0)]
    dets += [(20, 9, 0.0), (21, 9, 0.3), (22, 9, 0.2), (23, 9, 0.1), (24, 9, 0.4)]
    dets += [(25, 9, 0.5), (26, 9, 0.6), (27, 9, 0.7), (28, 9, 0.8), (29, 9, 0.9)]
    # n=5 → 1 query (tie 0.9: lowest id); n=4 → 0 queries; n=10 → 2 queries.
    assert select_queries(dets, 0.2) == {2, 28, 29}
    assert select_queries(dets, 0.5) == {2, 4, 10, 12, 25, 26, 27, 28, 29}


@pytest.mark.parametrize(
    "obj",
    [
        {"id": {"0": 5, "1": 6}, "split": {"0": "train", "1": "none"}},
        {"0": {"id": 5, "split": "train"}, "1": {"id": 6, "split": "none"}},
        [{"id": 5, "split": "train"}, {"id": 6, "split": "none"}],
        {"columns": ["id", "split"], "index": [0, 1], "data": [[5, "train"], [6, "none"]]},
    ],
    ids=["columns", "index", "records", "split"],
)
def test_read_pandas_table_orientations(obj: object) -> None:
    rows = read_pandas_table(obj, ("id", "split"), "f.json")
    assert [(r["id"], r["split"]) for r in rows] == [(5, "train"), (6, "none")]


def test_read_pandas_table_rejects() -> None:
    with pytest.raises(DatasetError, match="f.json: not a pandas"):
        read_pandas_table("x", ("id", "split"), "f.json")
    with pytest.raises(DatasetError, match="row 1 lacks"):
        read_pandas_table([{"id": 1, "split": "train"}, {"id": 2}], ("id", "split"), "f.json")


# --- the dataset ----------------------------------------------------------------------------


def test_builds_the_splits(pt_root: Path) -> None:
    ds = build_dataset("occluded_posetrack", root=pt_root, verbose=False)
    reid = pt_root / "PoseTrack21" / REID
    assert ds.name == "occluded_posetrack" and ds.num_cameras == 0
    assert ds.eval_protocol == "no_filter"
    # Train: persons 11, 12, 13 (13's last frame is not sampled) → pids 0, 1, 2.
    assert [(s.attributes["raw_pid"], s.pid) for s in ds.train] == [
        (11, 0),
        (11, 0),
        (11, 0),
        (12, 1),
        (12, 1),
        (12, 1),
        (13, 2),
        (13, 2),
    ]
    assert {s.camid for s in ds.train} == {0}
    # Val: per person the int(0.2 n) most occluded detections are queries, whatever the
    # sampling file says (it marks 21's first frame as the query).
    assert {(s.pid, s.attributes["detection_id"]) for s in ds.query} == {
        (21, pt_det_id("000342", 1, 21)),
        (22, pt_det_id("000342", 0, 22)),
    }
    assert len(ds.gallery) == 13
    assert {s.pid for s in ds.gallery} == {21, 22, 23}
    # camid = index of the video among the set's videos.
    cams = {s.attributes["video_id"]: s.camid for s in list(ds.query) + list(ds.gallery)}
    assert cams == {"000342": 0, "000522": 1}
    sample = ds.train[3]
    image_id = pt_image_id("000001", 0)
    assert sample.image == reid / "images" / "train" / "000001" / f"12_000001_{image_id}.jpg"
    assert sample.attributes["video_id"] == "000001" and sample.attributes["image_id"] == image_id
    assert sample.keypoints is None and sample.parsing is None
    assert sample.attributes["visibility"] == 1.0


def test_occlusion_levels_by_hand(pt_root: Path) -> None:
    ds = _build(pt_root)
    val = _by_det(list(ds.query) + list(ds.gallery))
    # 22 stands inside 21's box with V22[f] visible points; 21 has 17 visible points.
    for f in range(5):
        assert val[pt_det_id("000342", f, 21)].attributes["occ_level"] == pytest.approx(V22[f] / 17)
    # Frame 0: 22 has no visible point and 2 of 23's points fall in its box → 2 · 2.
    assert val[pt_det_id("000342", 0, 22)].attributes["occ_level"] == 4.0
    for f in range(1, 5):
        assert val[pt_det_id("000342", f, 22)].attributes["occ_level"] == 0.0
    for f in range(4):
        assert val[pt_det_id("000342", f, 23)].attributes["occ_level"] == 0.0
    assert pt_det_id("000342", 4, 23) not in val
    assert val[pt_det_id("000522", 0, 21)].attributes["occ_level"] == 0.0


def test_crops_keypoints_and_negatives(pt_root: Path) -> None:
    ds = _build(pt_root)
    train = _by_det(ds.train)
    # 11: a 60x120 box inside the frame, no resize.
    s11 = train[pt_det_id("000001", 0, 11)]
    assert read_rgb(s11.image).shape == (120, 60, 3)
    np.testing.assert_allclose(s11.target_keypoints[:, :2], [[30, 5 + 6 * j] for j in range(17)])
    assert s11.negative_keypoints.shape == (0, 17, 3)
    # 12: a 150x420 box → exactly 128x384, keypoints scaled.
    s12 = train[pt_det_id("000001", 1, 12)]
    assert read_rgb(s12.image).shape == (384, 128, 3)
    np.testing.assert_allclose(s12.target_keypoints[0], [75 * 128 / 150, 5 * 384 / 420, 1])
    # 13: box [-20, 200, 60, 100] clipped to x in [0, 40); its last point (y = 301) leaves the box.
    s13 = train[pt_det_id("000001", 0, 13)]
    assert read_rgb(s13.image).shape == (100, 40, 3)
    np.testing.assert_allclose(s13.target_keypoints[:16], [[10, 5 + 6 * j, 1] for j in range(16)])
    np.testing.assert_array_equal(s13.target_keypoints[16], [0, 0, 0])
    # Val 21, frame 1: 22's whole skeleton (x = 150) is inside → one negative at crop x = 50;
    # 23 (x = 430) has no point inside and is dropped.
    val = _by_det(list(ds.query) + list(ds.gallery))
    s21 = val[pt_det_id("000342", 1, 21)]
    assert s21.split == "query"
    assert s21.negative_keypoints.shape == (1, 17, 3)
    np.testing.assert_allclose(s21.negative_keypoints[0], [[50, 5 + 6 * j, 1] for j in range(17)])
    # 22, frame 0: no visible target point.
    s22 = val[pt_det_id("000342", 0, 22)]
    assert not s22.target_keypoints.any()
    np.testing.assert_allclose(s22.negative_keypoints[0, :2], [[20, 5, 1], [20, 11, 1]])


def test_parsing_labels_from_the_masks_annotations(pt_root: Path) -> None:
    ds = _build(pt_root)
    masks = pt_root / "PoseTrack21" / REID / "masks" / "val"
    s = _by_det(ds.query)[pt_det_id("000342", 0, 22)]
    assert s.parsing == masks / "000342" / f"22_000342_{pt_image_id('000342', 0)}.npy"
    assert s.parsing_format == "pifpaf36"
    assert all(x.parsing is None for x in ds.train)
    assert all(x.parsing is None for x in _build(pt_root, masks_dir=None).gallery)
    write_fields(s.parsing, (36, 96))
    with pytest.raises(DatasetError, match=f"{s.parsing}: parsing labels have shape"):
        _build(pt_root)


def test_crops_are_written_once_and_reused(pt_root: Path) -> None:
    first = _build(pt_root)
    reid = pt_root / "PoseTrack21" / REID
    files = sorted((reid / "images").rglob("*.jpg"))
    manifests = sorted((reid / "images" / "anns").glob("*_kpr_crops.json"))
    assert len(files) == 8 + 15 and len(manifests) == 2
    stamps = {p: p.stat().st_mtime_ns for p in files + manifests}
    assert not list(reid.rglob("*.tmp"))
    # The frames are no longer needed.
    shutil.rmtree(pt_root / "PoseTrack21" / "images")
    second = _build(pt_root)
    assert {p: p.stat().st_mtime_ns for p in files + manifests} == stamps
    assert second.train == first.train and second.query == first.query
    for a, b in zip(first.gallery, second.gallery, strict=True):
        np.testing.assert_array_equal(a.negative_keypoints, b.negative_keypoints)
        assert a.attributes == b.attributes


def test_only_missing_crops_are_extracted_again(pt_root: Path, capsys) -> None:
    _build(pt_root)
    reid = pt_root / "PoseTrack21" / REID
    files = sorted((reid / "images").rglob("*.jpg"))
    stamps = {p: p.stat().st_mtime_ns for p in files}
    files[0].unlink()
    occluded_posetrack(pt_root, verbose=True)
    assert "train: 8 sampled detections, 1 crops written, 7 reused" in capsys.readouterr().out
    assert files[0].is_file()
    assert all(p.stat().st_mtime_ns == stamps[p] for p in files[1:])


def test_root_can_be_the_posetrack_dir(pt_root: Path) -> None:
    assert len(_build(pt_root / "PoseTrack21").train) == 8


# --- bad input ------------------------------------------------------------------------------


def test_missing_root_and_sampling_file(pt_root: Path) -> None:
    with pytest.raises(DatasetError, match="dataset root does not exist"):
        _build(pt_root / "nope")
    sampling = pt_root / "PoseTrack21" / REID / "val_dataset_sampling.json"
    sampling.unlink()
    with pytest.raises(DatasetError, match=f"missing released sampling file {sampling}"):
        _build(pt_root)


def test_bad_sampling_values(pt_root: Path) -> None:
    sampling = pt_root / "PoseTrack21" / REID / "val_dataset_sampling.json"
    rows = json.loads(sampling.read_text())
    write_json(sampling, rows + [{"id": 1, "split": "train"}])
    with pytest.raises(DatasetError, match="'train' is not one of"):
        _build(pt_root)
    write_json(sampling, rows + [{"id": 777, "split": "gallery"}])
    with pytest.raises(DatasetError, match="sampled detection 777 is not in the annotations"):
        _build(pt_root)
    with pytest.warns(BadSampleWarning, match="skipped 1 bad sample"):
        ds = _build(pt_root, on_bad_sample="skip")
    assert len(ds.query) + len(ds.gallery) == 15


def test_missing_frame(pt_root: Path) -> None:
    frame = pt_root / "PoseTrack21" / "images" / "val" / "000342_mpii_test" / "000002.jpg"
    frame.unlink()
    with pytest.raises(DatasetError, match=f"{frame}: image file not found"):
        _build(pt_root)
    # The crops of the two frames before it were recorded despite the error.
    manifest = pt_root / "PoseTrack21" / REID / "images" / "anns" / "val_kpr_crops.json"
    assert len(json.loads(manifest.read_text())["crops"]) == 6
    with pytest.warns(BadSampleWarning, match="skipped 3 bad sample"):
        ds = _build(pt_root, on_bad_sample="skip")
    assert len(ds.query) + len(ds.gallery) == 12
    frame.write_bytes(b"corrupt")
    with pytest.warns(BadSampleWarning, match="not a decodable image"):
        _build(pt_root, on_bad_sample="skip")


def test_missing_annotations_folder(pt_root: Path) -> None:
    folder = pt_root / "PoseTrack21" / "posetrack_data" / "train"
    shutil.rmtree(folder)
    with pytest.raises(DatasetError, match=f"missing train annotations folder: {folder}"):
        _build(pt_root)
