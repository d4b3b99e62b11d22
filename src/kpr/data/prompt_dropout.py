"""Prompt dropout: training prompts with keypoints, body groups, negatives or everything removed.

KPR is meant to be prompt-optional, but a model trained only with full prompts never sees an
empty or partial one and is weak without it. Dropping parts of the *prompt* at training time (the
official ``drk``/``dak`` keypoint-dropping options are the per-keypoint case) teaches it both.
Only the prompt is affected: part labels are computed from the untouched keypoints.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from kpr.errors import ConfigError
from kpr.keypoints.groupings import prompt_grouping


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
    """

    prompt_p: float = 0.0
    negatives_p: float = 0.0
    group_p: float = 0.0
    keypoint_p: float = 0.0

    def __post_init__(self) -> None:
        for name in ("prompt_p", "negatives_p", "group_p", "keypoint_p"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(
                    f"prompt_dropout.{name}: expected a probability in [0, 1], got {value}"
                )

    @property
    def active(self) -> bool:
        return any((self.prompt_p, self.negatives_p, self.group_p, self.keypoint_p))


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
