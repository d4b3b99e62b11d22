from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from kpr.compat.parsing import official_target_masks
from kpr.data.parsing import (
    BODY_REGIONS,
    LABEL_MAP_PARTS,
    ParsingLabelError,
    keypoint_regions,
    part_scores,
    pixel_labels,
    read_sample_keypoints,
    require_parsing_labels,
    scores_from_keypoints,
    scores_from_label_map,
    target_masks,
    torso_split_row,
)
from kpr.data.samples import ReIDDataset, ReIDSample
from kpr.errors import ConfigError, DatasetError, KPRError
from kpr.keypoints import COCO17_NAMES, TARGET_GROUPINGS
from kpr.synthetic import PARSING_CLASSES

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "parsing_labels" / "parsing_seed0.npz"
CASES = [(g, hw) for g in ("five_v", "eight") for hw in ((256, 128), (384, 128))]
J = {n: i for i, n in enumerate(COCO17_NAMES)}


@pytest.fixture(scope="module")
def fixture():
    with np.load(FIXTURE) as data:
        return {k: data[k] for k in data.files}


@pytest.mark.parametrize(("grouping", "hw"), CASES)
def test_official_target_masks_match_fixture(fixture, grouping, hw):
    key = f"{grouping}_{hw[0]}x{hw[1]}"
    feat = (hw[0] // 4, hw[1] // 4)
    masks = official_target_masks(fixture["input_fields_36xhxw"], grouping, hw, feat)
    expected = fixture[f"{key}_target_masks"]
    assert masks.dtype == torch.float32 and tuple(masks.shape) == expected.shape
    np.testing.assert_allclose(masks.numpy(), expected, rtol=0, atol=1e-6)
    labels = pixel_labels(masks)
    assert labels.dtype == torch.int64
    np.testing.assert_array_equal(labels.numpy(), fixture[f"{key}_pixel_labels"])


@pytest.mark.parametrize(("grouping", "hw"), CASES)
def test_part_scores_from_pifpaf_file_match_fixture(fixture, grouping, hw, tmp_path):
    path = tmp_path / "crop.npy"
    np.save(path, fixture["input_fields_36xhxw"])
    sample = ReIDSample(
        image=tmp_path / "crop.jpg",
        pid=0,
        camid=0,
        split="train",
        parsing=path,
        parsing_format="pifpaf36",
    )
    scores = part_scores(sample, grouping, hw)
    assert scores.dtype == np.float32
    assert scores.shape == (TARGET_GROUPINGS[grouping].num_parts, *hw)
    masks = target_masks(scores, (hw[0] // 4, hw[1] // 4))
    np.testing.assert_allclose(
        masks.numpy(), fixture[f"{grouping}_{hw[0]}x{hw[1]}_target_masks"], rtol=0, atol=1e-6
    )


def test_target_masks_background_rule_and_batching():
    rng = np.random.default_rng(0)
    scores = rng.random((3, 5, 16, 8)).astype(np.float32)
    scores[0, :, :4] = 0.2  # all parts < 0.5 → background
    full = target_masks(scores, (16, 8))
    torch.testing.assert_close(full.sum(dim=1), torch.ones(3, 16, 8))
    labels = pixel_labels(full)
    assert (labels[0, :4] == 0).all()
    assert (labels[scores.max(axis=1) >= 0.5] > 0).all()
    small = target_masks(scores, (4, 2))
    for i in range(3):
        torch.testing.assert_close(small[i], target_masks(scores[i], (4, 2)))


def test_pixel_labels_ties_go_to_lowest_index():
    masks = torch.zeros(4, 2, 2)
    masks[1] = masks[3] = 0.5
    masks[0, 0, 0] = 0.5
    labels = pixel_labels(masks)
    assert labels.tolist() == [[0, 1], [1, 1]]


def test_wrong_shape_pifpaf_file_names_path_and_shape(tmp_path):
    path = tmp_path / "bad.npy"
    np.save(path, np.zeros((17, 8, 4), np.float32))
    sample = ReIDSample(
        image=tmp_path / "x.jpg",
        pid=0,
        camid=0,
        split="train",
        parsing=path,
        parsing_format="pifpaf36",
    )
    with pytest.raises(ParsingLabelError, match=r"bad\.npy.*\[36, h, w\].*\[17, 8, 4\]") as info:
        part_scores(sample, "eight", (32, 16))
    assert isinstance(info.value, KPRError)


def test_bad_label_maps(tmp_path):
    rgb = tmp_path / "rgb.png"
    cv2.imwrite(str(rgb), np.zeros((8, 4, 3), np.uint8))
    sample = ReIDSample(
        image=tmp_path / "x.png",
        pid=0,
        camid=0,
        split="train",
        parsing=rgb,
        parsing_format="label_map",
    )
    with pytest.raises(ParsingLabelError, match=r"rgb\.png.*\[h, w\].*\[8, 4, 3\]"):
        part_scores(sample, "eight", (8, 4), parsing_classes=PARSING_CLASSES)
    high = tmp_path / "high.png"
    cv2.imwrite(str(high), np.full((8, 4), 40, np.uint8))
    sample = ReIDSample(
        image=tmp_path / "x.png",
        pid=0,
        camid=0,
        split="train",
        parsing=high,
        parsing_format="label_map",
    )
    with pytest.raises(ParsingLabelError, match="label 40"):
        part_scores(sample, "eight", (8, 4), parsing_classes=PARSING_CLASSES)
    missing = ReIDSample(
        image=tmp_path / "x.png",
        pid=0,
        camid=0,
        split="train",
        parsing=tmp_path / "nope.png",
        parsing_format="label_map",
    )
    with pytest.raises(ParsingLabelError, match="nope.png"):
        part_scores(missing, "eight", (8, 4), parsing_classes=PARSING_CLASSES)
    with pytest.raises(ParsingLabelError, match="no parsing label file"):
        part_scores(
            ReIDSample(image=tmp_path / "x.png", pid=0, camid=0, split="train"),
            "eight",
            (8, 4),
            source="parsing",
        )


def test_label_map_tables_cover_the_groupings():
    assert BODY_REGIONS == PARSING_CLASSES
    for name, table in LABEL_MAP_PARTS.items():
        fed = {p for parts in table.values() for p in parts}
        assert fed == set(TARGET_GROUPINGS[name].part_names)
    with pytest.raises(ConfigError, match="hat"):
        scores_from_label_map(np.zeros((4, 4), np.uint8), ("background", "hat"), "eight", (4, 4))


def test_label_map_mapping_eight_and_five_v_torso_split():
    labels = np.zeros((10, 4), np.uint8)
    labels[0:2] = BODY_REGIONS.index("head")
    labels[2:6] = BODY_REGIONS.index("torso")
    labels[6:8, :2] = BODY_REGIONS.index("left_upper_leg")
    labels[6:8, 2:] = BODY_REGIONS.index("right_lower_leg")
    labels[8:] = BODY_REGIONS.index("left_foot")
    eight = scores_from_label_map(labels, BODY_REGIONS, "eight", (10, 4))
    names = TARGET_GROUPINGS["eight"].part_names
    assert eight[names.index("torso"), 2:6].min() == 1 and eight[names.index("torso")].sum() == 16
    assert eight[names.index("left_leg"), 6:8, :2].min() == 1
    assert eight[names.index("right_leg"), 6:8, 2:].min() == 1
    assert eight[names.index("left_feet"), 8:].min() == 1
    assert eight.sum(axis=0).max() == 1
    five = scores_from_label_map(labels, BODY_REGIONS, "five_v", (10, 4))
    assert five[1, 2:4].min() == 1 and five[2, 4:6].min() == 1  # extent midpoint: row 3.5
    split = scores_from_label_map(labels, BODY_REGIONS, "five_v", (10, 4), split_row=4.5)
    assert split[1, 2:5].min() == 1 and split[2, 5].min() == 1
    assert five[3, 6:8].min() == 1 and five[4, 8:].min() == 1


def test_torso_split_row_needs_a_shoulder_and_a_hip():
    kps = np.zeros((17, 3))
    kps[J["left_shoulder"]] = (5, 10, 1)
    assert torso_split_row(kps) is None
    kps[J["right_hip"]] = (5, 30, 1)
    assert torso_split_row(kps) == 20.0


def _segment_labels(regions: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Region labels along the middle 60 % of segment a→b."""
    ts = np.linspace(0.2, 0.8, 9)
    pts = a[None] + ts[:, None] * (b - a)[None]
    return regions[pts[:, 1].astype(int), pts[:, 0].astype(int)]


def test_keypoint_labels_land_on_the_limbs(split_samples):
    bones = (
        ("shoulder", "elbow", "upper_arm"),
        ("elbow", "wrist", "lower_arm"),
        ("hip", "knee", "upper_leg"),
        ("knee", "ankle", "lower_leg"),
    )
    limbs = [
        (f"{s}_{a}", f"{s}_{b}", f"{s}_{region}")
        for s in ("left", "right")
        for a, b, region in bones
    ]
    majority = []
    for sample in split_samples("train")[:40]:
        target = read_sample_keypoints(sample).target
        labels = cv2.imread(str(sample.parsing), cv2.IMREAD_UNCHANGED)
        regions = keypoint_regions(target, labels.shape)
        for a, b, region in limbs:
            if target[J[a], 2] > 0.3 and target[J[b], 2] > 0.3:
                along = _segment_labels(regions, target[J[a], :2], target[J[b], :2])
                assert (along > 0).all()
                majority.append(np.mean(along == BODY_REGIONS.index(region)) >= 0.5)
        face = [i for i in range(5) if target[i, 2] > 0.3]
        if face:
            cx, cy = target[face, :2].mean(axis=0).astype(int)
            assert regions[cy, cx] == BODY_REGIONS.index("head")
    # in side views the near limb covers the far one, so not every segment keeps its own label
    assert len(majority) > 100 and np.mean(majority) > 0.8


def test_keypoint_labels_overlap_ground_truth(split_samples):
    inter = union = 0
    for sample in split_samples("train")[:60]:
        target = read_sample_keypoints(sample).target
        labels = cv2.imread(str(sample.parsing), cv2.IMREAD_UNCHANGED)
        split = torso_split_row(target)
        gt = scores_from_label_map(labels, BODY_REGIONS, "eight", labels.shape, split)
        drawn = scores_from_keypoints(target, "eight", labels.shape)
        inter += np.logical_and(gt > 0.5, drawn > 0.5).sum(axis=(1, 2))
        union += np.logical_or(gt > 0.5, drawn > 0.5).sum(axis=(1, 2))
    iou = inter / union
    assert iou.mean() > 0.45 and iou.min() > 0.25


def test_part_scores_sources(split_samples):
    sample = split_samples("train")[0]
    skeletons = read_sample_keypoints(sample)
    image_hw = cv2.imread(str(sample.image)).shape[:2]
    kw = dict(parsing_classes=PARSING_CLASSES, skeletons=skeletons, image_hw=image_hw)
    auto = part_scores(sample, "eight", (256, 128), **kw)
    from_file = part_scores(sample, "eight", (256, 128), source="parsing", **kw)
    np.testing.assert_array_equal(auto, from_file)
    drawn = part_scores(sample, "eight", (256, 128), source="keypoints", **kw)
    upscaled = skeletons.target.copy()
    upscaled[:, :2] *= 2
    np.testing.assert_array_equal(drawn, scores_from_keypoints(upscaled, "eight", (256, 128)))
    bare = ReIDSample(image=sample.image, pid=0, camid=0, split="train")
    assert not part_scores(bare, "five_v", (64, 32)).any()


skeleton_points = st.lists(
    st.tuples(st.floats(-10, 70), st.floats(-10, 140), st.sampled_from([0.0, 0.2, 1.0])),
    min_size=17,
    max_size=17,
)


@settings(max_examples=40, deadline=None)
@given(points=skeleton_points, grouping=st.sampled_from(["eight", "five_v"]))
def test_keypoint_scores_are_one_hot_parts(points, grouping):
    kps = np.array(points)
    scores = scores_from_keypoints(kps, grouping, (128, 64))
    assert scores.dtype == np.float32 and scores.shape[1:] == (128, 64)
    assert set(np.unique(scores)) <= {0.0, 1.0}
    assert scores.sum(axis=0).max() <= 1
    if not (kps[:, 2] > 0.3).any():
        assert not scores.any()


KPR_RELEASE = "github.com/VlSomers/keypoint_promptable_reidentification"


def _sample(tmp_path, name, parsing=None):
    return ReIDSample(
        image=tmp_path / name,
        pid=0,
        camid=0,
        split="train",
        parsing=parsing,
        parsing_format="pifpaf36" if parsing else None,
    )


def test_parsing_source_without_a_file_is_a_dataset_error_saying_where_to_get_labels(tmp_path):
    sample = _sample(tmp_path, "x.png")
    with pytest.raises(DatasetError, match=rf"x\.png: no parsing label file.*{KPR_RELEASE}"):
        part_scores(sample, "eight", (8, 4), source="parsing")
    # The keypoint-drawn labels stay available when asked for by name.
    for source in ("keypoints", "auto"):
        assert part_scores(sample, "eight", (8, 4), source=source).shape == (8, 8, 4)


def test_require_parsing_labels_names_the_dataset_folder_and_the_release(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((36, 8, 4), np.float32))
    train = [
        _sample(tmp_path, "a.jpg", tmp_path / "a.npy"),
        _sample(tmp_path, "b.jpg"),
        _sample(tmp_path, "c.jpg"),
    ]
    dataset = ReIDDataset(name="market1501", train=train, query=[], gallery=[], num_cameras=6)
    with pytest.raises(DatasetError) as info:
        require_parsing_labels(dataset)
    message = str(info.value)
    assert message.startswith("market1501: label_source 'parsing' needs human-parsing labels")
    assert "2 of 3 training images have none (e.g. " + str(tmp_path / "b.jpg") in message
    assert "masks/<masks_dir>/<split folder>/" in message and "pifpaf_maskrcnn_filtering" in message
    assert KPR_RELEASE in message and "label_source=keypoints" in message
    require_parsing_labels(dataclasses.replace(dataset, train=train[:1]))
    folder = dataclasses.replace(dataset, name="my_folder_data")
    with pytest.raises(DatasetError, match=r"my_folder_data reads them from parsing/<split>/"):
        require_parsing_labels(folder)
