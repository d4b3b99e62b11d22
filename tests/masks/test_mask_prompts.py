from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from kpr.errors import PromptError
from kpr.keypoints import empty_prompt, prompt_grouping
from kpr.masks import LIP, CropMasks, mask_prompt, part_labels, person_mask
from kpr.modeling.build import model_config

# 4x4 crop: top row other people, a 2x2 target in the middle.
PERSON = np.array([[2, 2, 2, 2], [0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]], np.uint8)


def test_masks_prompt_at_half_size_is_the_covered_fraction():
    prompt = mask_prompt(person_mask(PERSON), "masks", "cck8", (2, 2))
    # [background, other people, target]; each output pixel averages a 2x2 block.
    assert np.allclose(prompt[1], [[0.5, 0.5], [0.0, 0.0]])
    assert np.allclose(prompt[2], [[0.25, 0.25], [0.25, 0.25]])
    assert np.allclose(prompt[0], [[0.25, 0.25], [0.75, 0.75]])


def test_masks_prompt_at_the_same_size_is_the_masks():
    prompt = mask_prompt(person_mask(PERSON), "masks", "cck8", (4, 4))
    assert np.array_equal(prompt[2], PERSON == 1)
    assert np.array_equal(prompt[1], PERSON == 2)
    assert np.array_equal(prompt[0], PERSON == 0)


def test_masks_prompt_channel_count_matches_the_model_config():
    for negatives, background in ((True, True), (False, True), (True, False), (False, False)):
        config = model_config(
            "kpr_tiny_128x64",
            prompt_type="masks",
            prompt_negatives=negatives,
            prompt_background=background,
        )
        prompt = mask_prompt(person_mask(PERSON), "masks", "cck8", (4, 4), negatives, background)
        assert prompt.shape[0] == config.prompt_channels == 1 + negatives + background


def test_without_negatives_other_people_count_as_background():
    prompt = mask_prompt(person_mask(PERSON), "masks", "cck8", (4, 4), with_negatives=False)
    assert prompt.shape[0] == 2
    assert np.array_equal(prompt[0], PERSON != 1)
    assert np.array_equal(prompt[1], PERSON == 1)


def test_without_background_the_empty_prompt_is_all_zeros():
    prompt = mask_prompt(None, "masks", "cck8", (4, 4), with_background=False)
    assert prompt.shape == (2, 4, 4) and not prompt.any()


def test_parsing_prompt_has_one_channel_per_prompt_group():
    # Face, Pants (both legs), Left-shoe (left leg and left feet with cck8), and an occluder.
    parts = np.array([[13, 9], [18, 0]], np.uint8)
    person = person_mask(np.array([[1, 1], [1, 2]]), "m.png")
    prompt = mask_prompt(part_labels(parts, LIP, "p.png", person), "parsing", "cck8", (2, 2))
    names = ("background", "negatives", *prompt_grouping("cck8").part_names)
    on = {n: prompt[i] for i, n in enumerate(names)}
    assert prompt.shape == (10, 2, 2)
    assert on["head"].tolist() == [[1, 0], [0, 0]]
    assert on["left_leg"].tolist() == [[0, 1], [1, 0]]
    assert on["right_leg"].tolist() == [[0, 1], [0, 0]]
    assert on["left_feet"].tolist() == [[0, 0], [1, 0]]
    assert on["negatives"].tolist() == [[0, 0], [0, 1]]
    # clipped, as for keypoints: a pixel feeding two groups has no background left
    assert on["background"].tolist() == [[0, 0], [0, 0]]


def test_parsing_prompt_ignores_parts_of_other_people():
    parts = np.array([[13, 13]], np.uint8)
    person = person_mask(np.array([[1, 2]]), "m.png")
    prompt = mask_prompt(part_labels(parts, LIP, "p.png", person), "parsing", "cck8", (1, 2))
    assert prompt[2].tolist() == [[1, 0]]


def test_parsing_prompt_needs_part_labels():
    with pytest.raises(PromptError, match="m.png: a parsing-prompt model needs part labels"):
        mask_prompt(person_mask(PERSON, "m.png"), "parsing", "cck8", (4, 4))


@pytest.mark.parametrize("grouping", ["cck8", "cck6"])
def test_no_masks_and_an_empty_mask_give_the_empty_keypoint_prompt(grouping):
    expected = empty_prompt(grouping, (8, 4))
    nobody = part_labels(np.zeros((16, 8), np.uint8), LIP)
    assert np.array_equal(mask_prompt(None, "parsing", grouping, (8, 4)), expected)
    assert np.array_equal(mask_prompt(nobody, "parsing", grouping, (8, 4)), expected)
    assert np.array_equal(
        mask_prompt(CropMasks(np.zeros((5, 3), np.uint8)), "masks", grouping, (8, 4)),
        expected[:3],
    )


person_masks = st.integers(1, 24).flatmap(
    lambda h: st.integers(1, 24).flatmap(
        lambda w: arrays(np.uint8, (h, w), elements=st.integers(0, 2))
    )
)


@settings(max_examples=60, deadline=None)
@given(person_masks, st.integers(1, 20), st.integers(1, 20))
def test_masks_prompt_channels_partition_every_pixel(labels, h, w):
    prompt = mask_prompt(person_mask(labels), "masks", "cck8", (h, w))
    assert prompt.shape == (3, h, w)
    assert prompt.min() >= 0.0 and prompt.max() <= 1.0
    assert np.allclose(prompt.sum(axis=0), 1.0, atol=1e-6)


@settings(max_examples=60, deadline=None)
@given(person_masks, st.integers(1, 3))
def test_integer_downscaling_preserves_the_target_area(labels, factor):
    tiled = np.kron(labels, np.ones((factor, factor), np.uint8))
    prompt = mask_prompt(person_mask(tiled), "masks", "cck8", labels.shape)
    assert np.allclose(prompt[2], labels == 1, atol=1e-6)
    assert np.isclose(prompt[2].mean(), (tiled == 1).mean(), atol=1e-6)


@settings(max_examples=40, deadline=None)
@given(person_masks)
def test_parsing_with_one_group_is_the_masks_prompt(labels):
    # With cck1 every body class feeds the single "body" group.
    face = np.where(labels == 1, 13, 0).astype(np.uint8)
    masks = part_labels(face, LIP, person=person_mask(labels))
    parsing = mask_prompt(masks, "parsing", "cck1", (8, 8))
    assert np.allclose(parsing, mask_prompt(masks, "masks", "cck1", (8, 8)))
