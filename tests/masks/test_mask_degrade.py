from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from kpr.errors import ConfigError
from kpr.masks import (
    KPR_REGIONS,
    MaskDegradation,
    degrade,
    dilate_target,
    erode_target,
    leak_target,
    part_labels,
    person_mask,
)

# 7x9: other people on the left three columns, the target a 5x3 block beside them.
PERSON = np.zeros((7, 9), np.uint8)
PERSON[:, :3] = 2
PERSON[1:6, 3:6] = 1


def test_erode_removes_the_target_border_only():
    out = erode_target(person_mask(PERSON), 1)
    expected = PERSON.copy()
    expected[1:6, 3:6] = 0
    expected[2:5, 4] = 1
    assert np.array_equal(out.person, expected)


def test_dilate_grows_over_background_but_not_over_other_people():
    out = dilate_target(person_mask(PERSON), 1)
    assert (out.person[:, :3] == 2).all()
    assert out.person[0, 4] == 1 and out.person[3, 6] == 1 and out.person[0, 8] == 0
    assert out.target.sum() > PERSON.__eq__(1).sum()


def test_leak_grows_onto_other_people_only():
    out = leak_target(person_mask(PERSON), 1)
    assert (out.person[1:6, 2] == 1).all() and (out.person[:, :2] == 2).all()
    assert out.person[0, 4] == 0 and out.person[3, 6] == 0


def test_grown_pixels_take_the_nearest_part_label():
    parts = np.where(PERSON == 1, 2, 0).astype(np.uint8)  # torso
    parts[1, 3:6] = 1  # head row
    masks = part_labels(parts, KPR_REGIONS, person=person_mask(PERSON))
    out = leak_target(masks, 1)
    assert out.parts[1, 2] == 1 and out.parts[4, 2] == 2


def test_radius_zero_changes_nothing():
    masks = person_mask(PERSON)
    for fn in (erode_target, dilate_target, leak_target):
        assert np.array_equal(fn(masks, 0).person, PERSON)


def test_degradation_is_seeded_per_crop():
    d = MaskDegradation("dilate", strength=(0.0, 0.5), seed=3)
    radii = {key: d.radius(key, 100) for key in ("a.png", "b.png", "c.png", "d.png")}
    assert radii == {key: d.radius(key, 100) for key in radii}
    assert len(set(radii.values())) > 1
    assert MaskDegradation("dilate", (0.0, 0.5), seed=4).radius("a.png", 100) != radii["a.png"]
    masks = person_mask(PERSON)
    assert np.array_equal(degrade(masks, d, "a.png").person, degrade(masks, d, "a.png").person)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"kind": "blur"}, "kind"), ({"kind": "erode", "strength": (0.3, 0.1)}, "strength")],
)
def test_bad_degradation_settings(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        MaskDegradation(**kwargs)


masks_strategy = arrays(
    np.uint8, st.tuples(st.integers(2, 16), st.integers(2, 16)), elements=st.integers(0, 2)
)


@settings(max_examples=50, deadline=None)
@given(masks_strategy, st.integers(0, 4))
def test_morphology_properties(labels, radius):
    masks = person_mask(labels)
    target, others = labels == 1, labels == 2
    eroded = erode_target(masks, radius)
    assert not (eroded.target & ~target).any()
    assert np.array_equal(eroded.others, others)
    dilated = dilate_target(masks, radius)
    assert not (target & ~dilated.target).any() and np.array_equal(dilated.others, others)
    leaked = leak_target(masks, radius)
    assert not (target & ~leaked.target).any()
    assert np.array_equal(leaked.person == 0, labels == 0)
