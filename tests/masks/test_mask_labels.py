from __future__ import annotations

import numpy as np
import pytest

from kpr.errors import ConfigError
from kpr.keypoints import prompt_grouping
from kpr.masks import (
    ATR,
    KPR_REGIONS,
    LIP,
    PartLabelTable,
    class_groups,
    label_table,
    table_for_classes,
)
from kpr.synthetic.people import PARSING_CLASSES


def groups_of(table: PartLabelTable, grouping: str, cls: str) -> set[str]:
    g = prompt_grouping(grouping)
    row = class_groups(table, g)[table.classes.index(cls)]
    return {g.part_names[i] for i in np.flatnonzero(row)}


def test_schp_tables_have_the_published_class_order():
    assert LIP.num_classes == 20 and ATR.num_classes == 18
    assert LIP.classes[:6] == ("Background", "Hat", "Hair", "Glove", "Sunglasses", "Upper-clothes")
    assert LIP.classes[13:] == (
        "Face",
        "Left-arm",
        "Right-arm",
        "Left-leg",
        "Right-leg",
        "Left-shoe",
        "Right-shoe",
    )
    assert ATR.classes[8:12] == ("Belt", "Left-shoe", "Right-shoe", "Face")
    assert ATR.classes[16:] == ("Bag", "Scarf")


@pytest.mark.parametrize(
    ("table", "cls", "grouping", "expected"),
    [
        (LIP, "Face", "cck8", {"head"}),
        (LIP, "Left-arm", "cck8", {"left_arm"}),
        (LIP, "Pants", "cck8", {"left_leg", "right_leg"}),
        # the shoe feeds the groups the ankle keypoint feeds
        (LIP, "Left-shoe", "cck8", {"left_leg", "left_feet"}),
        (LIP, "Left-shoe", "cck6", {"left_leg"}),
        (LIP, "Dress", "cck6", {"torso", "left_leg", "right_leg"}),
        (LIP, "Left-arm", "cck3", {"torso"}),
        (ATR, "Bag", "cck8", set()),
        (ATR, "Belt", "cck4", {"torso"}),
        (KPR_REGIONS, "left_lower_arm", "cck8", {"left_arm"}),
        (KPR_REGIONS, "right_upper_leg", "cck4", {"legs"}),
        (KPR_REGIONS, "background", "cck1", set()),
    ],
)
def test_classes_feed_the_groups_of_their_anchor_keypoints(table, cls, grouping, expected):
    assert groups_of(table, grouping, cls) == expected


def test_the_kpr_table_is_the_synthetic_parsing_classes():
    assert table_for_classes(tuple(PARSING_CLASSES)) is KPR_REGIONS
    assert table_for_classes(("background", "person")) is None


def test_every_body_class_feeds_some_group_for_every_prompt_grouping():
    for table in (LIP, ATR, KPR_REGIONS):
        for name in ("cck8", "cck6", "cck4", "cck3", "cck2", "cck1"):
            feeds = class_groups(table, prompt_grouping(name))
            has_regions = np.array([bool(r) for r in table.regions])
            assert (feeds.any(axis=1) == has_regions).all()


def test_unknown_table_name_lists_the_known_ones():
    with pytest.raises(ConfigError, match="lip, atr, kpr"):
        label_table("pascal")


def test_a_table_must_start_with_background_and_use_known_regions():
    with pytest.raises(ConfigError, match="wings"):
        PartLabelTable("x", ("bg", "wing"), ((), ("wings",)))
    with pytest.raises(ConfigError, match="class 0"):
        PartLabelTable("x", ("head", "bg"), (("head",), ()))
