"""Prompt dropout: training prompts with keypoints, body groups, negatives or everything removed.

KPR is meant to be prompt-optional, but a model trained only with full prompts never sees an
empty or partial one and is weak without it. Dropping parts of the *prompt* at training time (the
official ``drk``/``dak`` keypoint-dropping options are the per-keypoint case) teaches it both.
Only the prompt is affected: part labels are computed from the untouched keypoints. Mask prompts
(:func:`drop_mask_prompt`) drop the same things from the masks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from kpr.errors import ConfigError
from kpr.keypoints.groupings import prompt_grouping
from kpr.keypoints.prompts import VISIBILITY_THRESHOLD
from kpr.masks import BACKGROUND, TARGET, CropMasks, class_groups


@dataclass(frozen=True)
class PromptDropout:
    """Probabilities, each drawn independently per training sample.

    Attributes
    ----------
    prompt_p:
        Drop the whole prompt (target and negatives): the sample gets the empty prompt.
    negatives_p:
        Drop the negatives (the other people's keypoints).
    group_p:
        Drop each prompt group of the target (e.g. all head keypoints), per group.
    keypoint_p:
        Drop each remaining target keypoint, per keypoint.
    alone_p:
        Drop the whole prompt of a crop where the target is alone (no other person's keypoint
        or pixel in the prompt), drawn before the others. Unlike ``prompt_p`` it never asks the
        model to guess which of two people is meant: it teaches the use the paper promises, no
        prompt on non-ambiguous crops.
    """

    prompt_p: float = 0.0
    negatives_p: float = 0.0
    group_p: float = 0.0
    keypoint_p: float = 0.0
    alone_p: float = 0.0

    def __post_init__(self) -> None:
        for name in ("prompt_p", "negatives_p", "group_p", "keypoint_p", "alone_p"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(
                    f"prompt_dropout.{name}: expected a probability in [0, 1], got {value}"
                )

    @property
    def active(self) -> bool:
        return any((self.prompt_p, self.negatives_p, self.group_p, self.keypoint_p, self.alone_p))


def drop_prompt(
    target: NDArray[np.float64],
    negatives: NDArray[np.float64],
    dropout: PromptDropout,
    grouping: str,
    rng: np.random.Generator,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Apply ``dropout`` to one sample's prompt keypoints.

    Parameters
    ----------
    target : [17, 3] (x, y, c)
    negatives : [M, 17, 3]
    dropout : PromptDropout
    grouping : str
        The model's prompt grouping, whose groups ``group_p`` drops.
    rng : numpy Generator

    Returns
    -------
    (target [17, 3], negatives [M', 17, 3])
        Copies; a dropped keypoint has confidence 0 (positions kept), dropped negatives are removed.
    """
    target = np.array(target, dtype=np.float64)
    negatives = np.array(negatives, dtype=np.float64).reshape(-1, 17, 3)
    if not dropout.active:
        return target, negatives
    alone = not (negatives[..., 2] > VISIBILITY_THRESHOLD).any()
    if dropout.alone_p > 0 and alone and rng.random() < dropout.alone_p:
        target[:, 2] = 0.0
        return target, negatives
    if rng.random() < dropout.prompt_p:
        target[:, 2] = 0.0
        return target, negatives[:0]
    if rng.random() < dropout.negatives_p:
        negatives = negatives[:0]
    if dropout.group_p > 0:
        for members in prompt_grouping(grouping).members:
            if rng.random() < dropout.group_p:
                target[list(members), 2] = 0.0
    if dropout.keypoint_p > 0:
        target[rng.random(len(target)) < dropout.keypoint_p, 2] = 0.0
    return target, negatives


def drop_mask_prompt(
    masks: CropMasks,
    dropout: PromptDropout,
    grouping: str,
    rng: np.random.Generator,
) -> CropMasks | None:
    """Apply ``dropout`` to one sample's prompt masks, drawing like :func:`drop_prompt`.

    ``prompt_p``: no masks (None, the empty prompt). ``negatives_p``: the other people become
    background. ``group_p``: with part labels, per group of ``grouping`` the target's classes
    feeding it lose their label; with a person mask only, the target (its one group) becomes
    background. ``keypoint_p`` has no mask counterpart and is ignored.
    """
    if not dropout.active:
        return masks
    if dropout.alone_p > 0 and not masks.others.any() and rng.random() < dropout.alone_p:
        return None
    if rng.random() < dropout.prompt_p:
        return None
    person, parts = masks.person, masks.parts
    if rng.random() < dropout.negatives_p:
        person = np.where(masks.others, BACKGROUND, person).astype(np.uint8)
    if dropout.group_p > 0:
        if parts is None or masks.table is None:
            if rng.random() < dropout.group_p:
                person = np.where(person == TARGET, BACKGROUND, person).astype(np.uint8)
        else:
            feeds = class_groups(masks.table, prompt_grouping(grouping))
            dropped = [g for g in range(feeds.shape[1]) if rng.random() < dropout.group_p]
            if dropped:
                parts = np.where(feeds[parts][..., dropped].any(axis=-1), 0, parts).astype(np.uint8)
    return CropMasks(person, parts, masks.table, masks.source)
