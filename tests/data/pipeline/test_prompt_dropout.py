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
