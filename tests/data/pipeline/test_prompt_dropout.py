"""Prompt dropout removes exactly what its probabilities say, from the prompt only."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kpr.data.prompt_dropout import PromptDropout, drop_prompt
from kpr.errors import ConfigError
from kpr.keypoints import prompt_grouping


def _skeletons(seed: int = 0):
    rng = np.random.default_rng(seed)
    target = np.concatenate([rng.uniform(0, 60, (17, 2)), np.full((17, 1), 0.9)], axis=1)
    negatives = np.concatenate([rng.uniform(0, 60, (2, 17, 2)), np.full((2, 17, 1), 0.8)], axis=2)
    return target, negatives


def test_no_dropout_is_the_identity_and_draws_nothing():
    target, negatives = _skeletons()
    rng = np.random.default_rng(0)
    t, n = drop_prompt(target, negatives, PromptDropout(), "cck8", rng)
    np.testing.assert_array_equal(t, target)
    np.testing.assert_array_equal(n, negatives)
    assert rng.random() == np.random.default_rng(0).random()  # reproducibility of old recipes


def test_certain_dropouts_remove_exactly_their_part():
    target, negatives = _skeletons()
    t, n = drop_prompt(
        target, negatives, PromptDropout(prompt_p=1.0), "cck8", np.random.default_rng(0)
    )
    assert (t[:, 2] == 0).all() and n.shape == (0, 17, 3)
    t, n = drop_prompt(
        target, negatives, PromptDropout(negatives_p=1.0), "cck8", np.random.default_rng(0)
    )
    np.testing.assert_array_equal(t, target)
    assert n.shape == (0, 17, 3)
    t, n = drop_prompt(
        target, negatives, PromptDropout(group_p=1.0), "cck8", np.random.default_rng(0)
    )
    grouped = sorted({k for members in prompt_grouping("cck8").members for k in members})
    assert (t[grouped, 2] == 0).all()
    np.testing.assert_array_equal(n, negatives)
    t, _ = drop_prompt(
        target, negatives, PromptDropout(keypoint_p=1.0), "cck8", np.random.default_rng(0)
    )
    assert (t[:, 2] == 0).all()
    np.testing.assert_array_equal(t[:, :2], target[:, :2])  # positions are kept


def test_group_dropout_drops_whole_groups():
    target, negatives = _skeletons()
    groups = prompt_grouping("cck8").members
    for seed in range(20):
        t, _ = drop_prompt(
            target, negatives, PromptDropout(group_p=0.5), "cck8", np.random.default_rng(seed)
        )
        dropped = t[:, 2] == 0
        for (
            members
        ) in groups:  # a kept group keeps all its keypoints unless another group dropped them
            if not dropped[list(members)].all():
                kept_alone = [k for k in members if not any(k in m for m in groups if m != members)]
                assert not dropped[kept_alone].any()


@settings(max_examples=40, deadline=None)
@given(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1), st.floats(0, 1), st.integers(0, 10_000))
def test_dropout_only_lowers_confidences_and_removes_whole_negatives(p1, p2, p3, p4, seed):
    target, negatives = _skeletons(seed % 7)
    dropout = PromptDropout(prompt_p=p1, negatives_p=p2, group_p=p3, keypoint_p=p4)
    t, n = drop_prompt(target, negatives, dropout, "cck6", np.random.default_rng(seed))
    np.testing.assert_array_equal(t[:, :2], target[:, :2])
    assert ((t[:, 2] == target[:, 2]) | (t[:, 2] == 0)).all()
    assert n.shape in ((2, 17, 3), (0, 17, 3))
    if len(n):
        np.testing.assert_array_equal(n, negatives)


def test_empirical_rate_of_whole_prompt_dropout():
    target, negatives = _skeletons()
    rng = np.random.default_rng(1)
    empty = sum(
        (
            drop_prompt(target, negatives, PromptDropout(prompt_p=0.3), "cck8", rng)[0][:, 2] == 0
        ).all()
        for _ in range(2000)
    )
    assert 0.27 < empty / 2000 < 0.33


def test_probabilities_are_checked():
    with pytest.raises(
        ConfigError, match=r"prompt_dropout.group_p: expected a probability in \[0, 1\], got 1.5"
    ):
        PromptDropout(group_p=1.5)


def test_training_prompts_get_the_dropout_and_labels_do_not(train_samples):
    import dataclasses

    from kpr.data.train_dataset import DataConfig, TrainDataset
    from kpr.data.transforms import AugmentationConfig
    from kpr.synthetic import PARSING_CLASSES

    base = DataConfig(augmentation=AugmentationConfig(image_size=(128, 64), bipo_p=0.0))
    dropped = dataclasses.replace(base, prompt_dropout=PromptDropout(prompt_p=1.0))
    a = TrainDataset(train_samples, base, parsing_classes=PARSING_CLASSES, seed=3)[0]
    b = TrainDataset(train_samples, dropped, parsing_classes=PARSING_CLASSES, seed=3)[0]
    assert a.prompt[2:].sum() > 0 and b.prompt[2:].sum() == 0 and b.prompt[1].sum() == 0
    assert (b.prompt[0] == 1).all()
    np.testing.assert_array_equal(a.target_masks.numpy(), b.target_masks.numpy())
    np.testing.assert_array_equal(a.image.numpy(), b.image.numpy())


def test_alone_dropout_empties_only_prompts_without_other_people():
    target, negatives = _skeletons()
    dropout = PromptDropout(alone_p=1.0)
    # Another person is drawn: the prompt is kept whole.
    t, n = drop_prompt(target, negatives, dropout, "cck8", np.random.default_rng(0))
    np.testing.assert_array_equal(t, target)
    np.testing.assert_array_equal(n, negatives)
    # Negatives whose keypoints are all below the drawing threshold do not count as a person.
    faint = negatives.copy()
    faint[..., 2] = 0.2
    for others in (negatives[:0], faint):
        t, n = drop_prompt(target, others, dropout, "cck8", np.random.default_rng(0))
        assert (t[:, 2] == 0).all()
        np.testing.assert_array_equal(t[:, :2], target[:, :2])


def test_alone_dropout_rate_matches_its_probability():
    target, _ = _skeletons()
    rng = np.random.default_rng(3)
    dropout = PromptDropout(alone_p=0.25)
    empty = [
        not drop_prompt(target, np.zeros((0, 17, 3)), dropout, "cck8", rng)[0][:, 2].any()
        for _ in range(4000)
    ]
    assert abs(np.mean(empty) - 0.25) < 0.025


def _masks(with_parts: bool):
    from kpr.masks import KPR_REGIONS, part_labels, person_mask

    person = np.array([[1, 1, 1, 2], [1, 1, 0, 2]], np.uint8)
    if not with_parts:
        return person_mask(person)
    # head, torso, left upper arm, left foot on the target
    parts = np.array([[1, 2, 3, 0], [11, 2, 0, 0]], np.uint8)
    return part_labels(parts, KPR_REGIONS, person=person_mask(person))


@pytest.mark.parametrize("with_parts", [False, True])
def test_mask_dropout_removes_the_prompt_or_the_negatives(with_parts):
    from kpr.data.prompt_dropout import drop_mask_prompt

    masks = _masks(with_parts)
    rng = np.random.default_rng(0)
    assert drop_mask_prompt(masks, PromptDropout(), "cck8", rng) is masks
    assert rng.random() == np.random.default_rng(0).random()
    assert drop_mask_prompt(masks, PromptDropout(prompt_p=1.0), "cck8", rng) is None
    kept = drop_mask_prompt(masks, PromptDropout(negatives_p=1.0), "cck8", rng)
    assert not kept.others.any() and np.array_equal(kept.target, masks.target)


def test_mask_group_dropout_drops_the_target_or_its_part_labels():
    from kpr.data.prompt_dropout import drop_mask_prompt

    rng = np.random.default_rng(0)
    plain = drop_mask_prompt(_masks(False), PromptDropout(group_p=1.0), "cck8", rng)
    assert not plain.target.any() and plain.others.sum() == 2
    parted = drop_mask_prompt(_masks(True), PromptDropout(group_p=1.0), "cck8", rng)
    assert not parted.parts.any()
    assert np.array_equal(parted.person, _masks(True).person)  # the target stays the target
    # each group is dropped on its own: over seeds every part label is both kept and dropped
    seen = []
    for seed in range(30):
        out = drop_mask_prompt(
            _masks(True), PromptDropout(group_p=0.5), "cck6", np.random.default_rng(seed)
        )
        assert np.array_equal(out.target, _masks(True).target)
        seen.append(set(np.unique(out.parts)) - {0})
    for label in (1, 2, 3, 11):
        assert any(label in kept for kept in seen) and any(label not in kept for kept in seen)
