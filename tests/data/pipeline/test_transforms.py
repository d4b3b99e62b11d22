from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kpr.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    AugmentationConfig,
    build_train_transform,
)
from kpr.errors import ConfigError

H, W = 64, 32
NO_DROPOUT = AugmentationConfig(image_size=(H, W), dropout_p=0.0, bipo_p=0.0)
MEAN = np.asarray(IMAGENET_MEAN, np.float32)[:, None, None]
STD = np.asarray(IMAGENET_STD, np.float32)[:, None, None]


def dotted_sample(rng: np.random.Generator, hw: tuple[int, int]):
    """A dark image with a bright 3×3 dot under each of 17 target and 5 negative keypoints (one
    per 4×4 cell), and one part-score channel equal to the dots."""
    h, w = hw
    image = np.full((h, w, 3), 20, np.uint8)
    cells = rng.choice((h // 4) * (w // 4), size=22, replace=False)
    kps = np.zeros((2, 17, 3))
    for n, cell in enumerate(cells):
        y, x = 4 * (cell // (w // 4)) + 2, 4 * (cell % (w // 4)) + 2
        image[y - 1 : y + 2, x - 1 : x + 2] = 250
        kps[n // 17, n % 17] = (x + 0.5, y + 0.5, 1.0)
    scores = (image[None, ..., 0] > 128).astype(np.float32)
    return image, scores, kps[0], kps[1:]


def denormalised(chw: np.ndarray) -> np.ndarray:
    return ((chw * STD + MEAN) * 255.0).transpose(1, 2, 0)


@pytest.mark.parametrize("seed", range(12))
def test_keypoints_follow_pad_and_crop(seed):
    rng = np.random.default_rng(seed)
    image, scores, target, negatives = dotted_sample(rng, (H, W))
    out = build_train_transform(NO_DROPOUT)(image, scores, target, negatives, rng)
    bright = denormalised(out.image)[..., 0] > 128
    for skel_in, skel_out in ((target[None], out.target[None]), (negatives, out.negatives)):
        for p_in, p_out in zip(skel_in.reshape(-1, 3), skel_out.reshape(-1, 3)):
            if p_in[2] == 0:
                assert p_out[2] == 0
                continue
            x, y = p_out[0], p_out[1]
            inside = 0 <= x < W and 0 <= y < H
            assert (p_out[2] == 1.0) == inside
            if inside:
                assert bright[int(y), int(x)]
                assert out.part_scores[0, int(y), int(x)] == 1.0
    # only a translation by at most the padding
    shift = out.target[:, :2] - target[:, :2]
    assert np.allclose(shift, shift[0]) and np.abs(shift[0]).max() <= NO_DROPOUT.pad


@pytest.mark.parametrize("seed", range(6))
def test_keypoints_follow_resize(seed):
    rng = np.random.default_rng(seed)
    image, _, target, negatives = dotted_sample(rng, (H // 2, W // 2))
    cfg = dataclasses.replace(NO_DROPOUT, pad=0)
    out = build_train_transform(cfg)(image, None, target, negatives, rng)
    bright = denormalised(out.image)[..., 0] > 128
    np.testing.assert_allclose(out.target[:, :2], target[:, :2] * 2)
    moved = np.concatenate([out.target[None], out.negatives]).reshape(-1, 3)
    given_points = np.concatenate([target[None], negatives]).reshape(-1, 3)
    for x, y, c in moved[given_points[:, 2] > 0]:
        assert c == 1.0 and bright[int(y), int(x)]
    assert out.part_scores is None


@pytest.mark.parametrize("seed", range(8))
def test_coarse_dropout_hole_drops_keypoints_and_labels(seed):
    rng = np.random.default_rng(seed)
    image, scores, target, negatives = dotted_sample(rng, (H, W))
    scores = np.ones_like(scores)
    cfg = dataclasses.replace(NO_DROPOUT, dropout_p=1.0, pad=0)
    out = build_train_transform(cfg)(image, scores, target, negatives, rng)
    assert len(out.holes) == 1
    x1, y1, x2, y2 = out.holes[0]
    rows, cols = cfg.dropout_pixels()
    assert rows[0] <= y2 - y1 <= rows[1] and cols[0] <= x2 - x1 <= cols[1]
    # the normalised hole is 0, i.e. the mean colour
    assert (out.image[:, y1:y2, x1:x2] == 0).all()
    assert (out.part_scores[:, y1:y2, x1:x2] == 0).all()
    assert out.part_scores.sum() == H * W - (y2 - y1) * (x2 - x1)
    for p_in, p_out in zip(
        np.concatenate([target[None], negatives]).reshape(-1, 3),
        np.concatenate([out.target[None], out.negatives]).reshape(-1, 3),
    ):
        in_hole = x1 <= p_in[0] < x2 and y1 <= p_in[1] < y2
        assert p_out[2] == (0.0 if in_hole else p_in[2])
        np.testing.assert_array_equal(p_out[:2], p_in[:2])


def test_invalid_input_keypoints_are_zeroed():
    image = np.zeros((H, W, 3), np.uint8)
    target = np.zeros((17, 3))
    target[0] = (W + 3, 5, 1.0)  # outside the original image
    target[1] = (4, 4, 0.0)
    target[2] = (4, 4, 0.9)
    plain = dataclasses.replace(NO_DROPOUT, pad=0)
    out = build_train_transform(plain)(
        image, None, target, np.zeros((0, 17, 3)), np.random.default_rng(0)
    )
    np.testing.assert_array_equal(out.target[:2], 0.0)
    np.testing.assert_array_equal(out.target[2], (4, 4, 0.9))
    assert out.negatives.shape == (0, 17, 3)


def test_train_transform_is_deterministic_given_the_rng():
    rng = np.random.default_rng(1)
    image, scores, target, negatives = dotted_sample(rng, (H, W))
    transform = build_train_transform(AugmentationConfig(image_size=(H, W)))
    a = transform(image, scores, target, negatives, np.random.default_rng(5))
    b = transform(image, scores, target, negatives, np.random.default_rng(5))
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.part_scores, b.part_scores)
    np.testing.assert_array_equal(a.target, b.target)
    assert a.holes == b.holes


def test_bipo_is_drawn_with_its_probability():
    rng = np.random.default_rng(2)
    image, scores, target, negatives = dotted_sample(rng, (H, W))
    calls = []

    def picker(r):
        calls.append(1)
        return None

    transform = build_train_transform(dataclasses.replace(NO_DROPOUT, bipo_p=0.3))
    for i in range(400):
        transform(image, scores, target, negatives, np.random.default_rng(i), picker)
    assert 0.22 < len(calls) / 400 < 0.38


@pytest.mark.parametrize(
    "changes",
    [
        {"image_size": (0, 4)},
        {"pad": -1},
        {"dropout_p": 1.5},
        {"bipo_p": -0.1},
        {"dropout_height": (0.7, 0.2)},
        {"std": (0.2, 0.0, 0.2)},
        {"bipo_max_count": 0},
    ],
)
def test_config_validation(changes):
    with pytest.raises(ConfigError):
        AugmentationConfig(**changes)


def test_official_dropout_sizes():
    rows, cols = AugmentationConfig(image_size=(256, 128)).dropout_pixels()
    assert rows == (38, 166) and cols == (19, 83)


@settings(max_examples=30, deadline=None)
@given(
    xy=st.lists(
        st.tuples(st.floats(-20, W + 20), st.floats(-20, H + 20)), min_size=17, max_size=17
    ),
    seed=st.integers(0, 2**32 - 1),
)
def test_output_keypoints_visible_iff_in_frame_and_outside_hole(xy, seed):
    target = np.concatenate([np.array(xy), np.ones((17, 1))], axis=1)
    image = np.zeros((H, W, 3), np.uint8)
    cfg = AugmentationConfig(image_size=(H, W), bipo_p=0.0, dropout_p=0.5)
    no_negatives = np.zeros((0, 17, 3))
    out = build_train_transform(cfg)(image, None, target, no_negatives, np.random.default_rng(seed))
    valid_in = (target[:, 0] >= 0) & (target[:, 0] < W) & (target[:, 1] >= 0) & (target[:, 1] < H)
    x, y = out.target[:, 0], out.target[:, 1]
    visible = valid_in & (x >= 0) & (x < W) & (y >= 0) & (y < H)
    for x1, y1, x2, y2 in out.holes:
        visible &= ~((x >= x1) & (x < x2) & (y >= y1) & (y < y2))
    np.testing.assert_array_equal(out.target[:, 2] > 0, visible)


@pytest.mark.parametrize("seed", range(8))
def test_prompt_masks_move_with_the_image_and_the_hole_shows_no_one(seed):
    from kpr.masks import LIP, part_labels, person_mask

    rng = np.random.default_rng(seed)
    image, scores, target, negatives = dotted_sample(rng, (H, W))
    # masks at twice the image's size: resized nearest-neighbour to it first
    bright = np.kron(image[..., 0] > 128, np.ones((2, 2), bool))
    person = np.where(bright, 1, 2).astype(np.uint8)
    masks = part_labels(np.where(bright, 13, 0), LIP, person=person_mask(person))
    config = dataclasses.replace(NO_DROPOUT, dropout_p=1.0)
    out = build_train_transform(config)(image, None, target, negatives, rng, masks=masks)
    assert out.masks is not None and out.masks.hw == (H, W) and out.masks.table is LIP
    shown = denormalised(out.image)[..., 0]
    x1, y1, x2, y2 = out.holes[0]
    hole = np.zeros((H, W), bool)
    hole[y1:y2, x1:x2] = True
    padding = np.isclose(shown, 0.0, atol=1.0) & ~hole
    assert np.array_equal(out.masks.target, (shown > 128) & ~hole)
    assert np.array_equal(out.masks.parts == 13, out.masks.target)
    assert not out.masks.person[hole].any() and not out.masks.person[padding].any()
    assert (out.masks.person[~hole & ~padding & (shown < 128)] == 2).all()
