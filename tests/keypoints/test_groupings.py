from __future__ import annotations

import numpy as np
import pytest

from kpr.errors import ConfigError, KeypointFormatError
from kpr.keypoints import (
    COCO17_NAMES,
    PIFPAF_CHANNEL_NAMES,
    PIFPAF_CONNECTIONS,
    POSETRACK_NAMES,
    PROMPT_GROUPINGS,
    SKELETON_EDGES,
    TARGET_GROUPINGS,
    Grouping,
    group_channels,
    prompt_channel_names,
    prompt_grouping,
    target_grouping,
)


def parts(grouping: Grouping) -> dict[str, set[int]]:
    return {name: set(idx) for name, idx in zip(grouping.part_names, grouping.members)}


def test_coco_layout():
    assert len(COCO17_NAMES) == 17
    assert COCO17_NAMES[5] == "left_shoulder" and COCO17_NAMES[16] == "right_ankle"
    assert POSETRACK_NAMES[1:3] == ("head_bottom", "head_top")
    assert POSETRACK_NAMES[3:] == COCO17_NAMES[3:]


def test_pifpaf_connections_follow_the_notes_order():
    assert PIFPAF_CONNECTIONS == (
        (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7),
        (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
    )  # fmt: skip
    assert SKELETON_EDGES == PIFPAF_CONNECTIONS
    assert len(PIFPAF_CHANNEL_NAMES) == 36
    assert PIFPAF_CHANNEL_NAMES[17] == "left_ankle-left_knee"
    assert PIFPAF_CHANNEL_NAMES[35] == "right_ear-right_shoulder"


def test_cck8_table():
    g = prompt_grouping("cck8")
    assert g.num_parts == 8
    assert g.part_names == (
        "head", "left_arm", "right_arm", "torso",
        "left_leg", "right_leg", "left_feet", "right_feet",
    )  # fmt: skip
    assert g.members[1] == (5, 7, 9)
    assert g.members[2] == (6, 8, 10)
    p = parts(g)
    assert p["head"] == {0, 1, 2, 3, 4}
    assert p["torso"] == {5, 6, 11, 12}
    # Shoulders feed an arm and the torso; ankles feed a leg and a foot.
    assert 5 in p["left_arm"] & p["torso"] and 6 in p["right_arm"] & p["torso"]
    assert p["left_leg"] & p["left_feet"] == {15} and p["right_leg"] & p["right_feet"] == {16}


def test_cck6_table():
    g = prompt_grouping("cck6")
    assert g.part_names == ("head", "left_arm", "right_arm", "left_leg", "right_leg", "torso")
    assert g.members[1:5] == ((7, 9), (8, 10), (13, 15), (14, 16))
    assert set(g.members[5]) == {5, 6, 11, 12}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("cck4", {"head": {0, 1, 2, 3, 4}, "arms": {7, 8, 9, 10}, "legs": {13, 14, 15, 16},
                  "torso": {5, 6, 11, 12}}),
        ("cck3", {"head": {0, 1, 2, 3, 4}, "legs": {13, 14, 15, 16},
                  "torso": {5, 6, 7, 8, 9, 10, 11, 12}}),
        ("cck2", {"legs": {13, 14, 15, 16}, "torso": set(range(13))}),
        ("cck1", {"body": set(range(17))}),
    ],
)  # fmt: skip
def test_coarse_prompt_groupings(name, expected):
    g = prompt_grouping(name)
    assert list(g.part_names) == list(expected)
    assert parts(g) == expected


def test_every_prompt_grouping_covers_all_keypoints():
    for g in PROMPT_GROUPINGS.values():
        assert set().union(*g.members) == set(range(17)), g.name
        assert g.source_names == COCO17_NAMES


def test_target_groupings_part_names():
    assert list(PROMPT_GROUPINGS) == ["cck8", "cck6", "cck4", "cck3", "cck2", "cck1"]
    assert list(TARGET_GROUPINGS) == ["five_v", "eight"]
    assert target_grouping("five_v").part_names == (
        "head", "upper_arms_torso", "lower_arms_torso", "legs", "feet",
    )  # fmt: skip
    assert target_grouping("eight").part_names == prompt_grouping("cck8").part_names


def test_five_v_members_by_index():
    p = parts(target_grouping("five_v"))
    assert p["head"] == {0, 1, 2, 3, 4, 29, 30, 31, 32, 33, 34, 35}
    assert p["upper_arms_torso"] == {7, 8, 25, 26, 5, 6, 24}
    assert p["lower_arms_torso"] == {9, 10, 27, 28, 11, 12, 23}
    assert p["legs"] == {11, 12, 13, 14, 17, 18, 19, 20}
    assert p["feet"] == {15, 16}


def test_eight_members_by_index():
    p = parts(target_grouping("eight"))
    assert p["head"] == {0, 1, 2, 3, 4, 29, 30, 31, 32, 33, 34, 35}
    assert p["left_arm"] == {5, 7, 9, 25, 27}
    assert p["right_arm"] == {6, 8, 10, 26, 28}
    assert p["torso"] == {11, 12, 21, 22, 23, 24}
    assert p["left_leg"] == {13, 17, 18, 21}
    assert p["right_leg"] == {14, 19, 20}
    assert p["left_feet"] == {15} and p["right_feet"] == {16}


def one_hot_fields(channel: str, h: int = 2, w: int = 3) -> np.ndarray:
    fields = np.zeros((36, h, w), dtype=np.float32)
    fields[PIFPAF_CHANNEL_NAMES.index(channel), 1, 2] = 0.75
    return fields


@pytest.mark.parametrize(
    ("channel", "five_v_parts", "eight_parts"),
    [
        # The documented quirks: only the right shoulder-hip connection is in five_v ...
        ("right_shoulder-right_hip", ["lower_arms_torso"], ["torso"]),
        ("left_shoulder-left_hip", [], ["torso"]),
        # ... and eight's left_leg contains the hip-hip connection, like the torso.
        ("left_hip-right_hip", [], ["torso", "left_leg"]),
        ("left_hip", ["lower_arms_torso", "legs"], ["torso"]),
        ("nose", ["head"], ["head"]),
        ("right_ankle", ["feet"], ["right_feet"]),
    ],
)
def test_group_channels_one_hot(channel, five_v_parts, eight_parts):
    fields = one_hot_fields(channel)
    for name, lit in (("five_v", five_v_parts), ("eight", eight_parts)):
        g = target_grouping(name)
        out = group_channels(fields, g)
        assert out.shape == (g.num_parts, 2, 3) and out.dtype == np.float32
        lit_now = [g.part_names[k] for k in range(g.num_parts) if out[k].any()]
        assert lit_now == lit
        for k in range(g.num_parts):
            assert out[k, 1, 2] == (0.75 if g.part_names[k] in lit else 0.0)
            assert np.count_nonzero(out[k]) <= 1


def test_group_channels_takes_max_and_clips():
    fields = np.zeros((36, 1, 2))
    fields[PIFPAF_CHANNEL_NAMES.index("left_ankle")] = [[0.2, 1.7]]
    fields[PIFPAF_CHANNEL_NAMES.index("right_ankle")] = [[0.6, -0.5]]
    out = group_channels(fields, target_grouping("five_v"))
    np.testing.assert_array_equal(out[4], [[0.6, 1.0]])
    out8 = group_channels(fields, target_grouping("eight"))
    np.testing.assert_array_equal(out8[6], [[0.2, 1.0]])
    np.testing.assert_array_equal(out8[7], [[0.6, 0.0]])


def test_group_channels_over_keypoint_heatmaps():
    maps = np.arange(17, dtype=np.float64)[:, None, None] / 20 * np.ones((17, 2, 2))
    out = group_channels(maps, prompt_grouping("cck8"))
    np.testing.assert_allclose(out[:, 0, 0], np.array([4, 9, 10, 12, 15, 16, 15, 16]) / 20)


def test_group_channels_rejects_channel_last(tmp_path):
    with pytest.raises(KeypointFormatError, match=r"labels\.npy: expected shape \[36, H, W\]"):
        group_channels(np.zeros((96, 32, 36)), target_grouping("eight"), name="labels.npy")


def test_lookup_errors_list_valid_names():
    with pytest.raises(ConfigError, match="unknown prompt grouping 'cck5'.*cck8, cck6"):
        prompt_grouping("cck5")
    with pytest.raises(ConfigError, match="'five_v' is a target grouping"):
        prompt_grouping("five_v")
    with pytest.raises(ConfigError, match="unknown target grouping 'cck8'.*five_v, eight"):
        target_grouping("cck8")


def test_prompt_channel_names():
    assert prompt_channel_names(prompt_grouping("cck6")) == (
        "background", "negative_keypoints", "head", "left_arm", "right_arm", "left_leg",
        "right_leg", "torso",
    )  # fmt: skip


def test_grouping_validates_its_table():
    with pytest.raises(ConfigError, match="2 part names but 1 member lists"):
        Grouping("bad", ("a", "b"), ((0,),), COCO17_NAMES)
    with pytest.raises(ConfigError, match="part 'a' has members \\(17,\\)"):
        Grouping("bad", ("a",), ((17,),), COCO17_NAMES)
    with pytest.raises(ConfigError, match="part 'a' has members \\(\\)"):
        Grouping("bad", ("a",), ((),), COCO17_NAMES)
