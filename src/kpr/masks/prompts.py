"""Masks → prompt channels at the model's input size (numpy only, no torch).

Channel order follows the keypoint prompts (:func:`kpr.keypoints.build_prompt`):
``[background, negatives, target channels…]``, where the target channels are one mask (prompt
type ``masks``) or one per prompt group (``parsing``). Each channel is the fraction of the output
pixel covered by its mask (area resampling, so thin structures fade instead of vanishing);
background = clip(1 − sum of the other channels, 0, 1), as for keypoints. No masks, or a mask
without anyone in it, gives the empty prompt.
"""

from __future__ import annotations

from typing import Literal, Protocol

import cv2
import numpy as np
from numpy.typing import NDArray

from kpr.configuration import as_hw
from kpr.errors import ConfigError, PromptError
from kpr.keypoints.groupings import Grouping, prompt_grouping
from kpr.masks.crop import CropMasks
from kpr.masks.labels import class_groups

MaskPromptType = Literal["masks", "parsing"]


def _area_resize(channels: NDArray[np.float32], out_hw: tuple[int, int]) -> NDArray[np.float64]:
    """[C, h, w] → [C, H, W]: INTER_AREA per channel (the mean of the covered source pixels)."""
    h, w = out_hw
    if channels.shape[1:] == (h, w):
        return channels.astype(np.float64)
    out = np.empty((channels.shape[0], h, w))
    for c, channel in enumerate(channels):
        out[c] = cv2.resize(channel, (w, h), interpolation=cv2.INTER_AREA)
    return np.clip(out, 0.0, 1.0, out=out)


def target_channels(
    masks: CropMasks, prompt_type: MaskPromptType, grouping: Grouping | str
) -> NDArray[np.float32]:
    """The target's channels at the masks' own size.

    Returns
    -------
    ndarray, shape [1, h, w] (``masks``) or [Kp, h, w] (``parsing``), float32 in {0, 1}
        ``parsing``: channel g is on where the target's part class feeds group g (see
        :func:`kpr.masks.labels.class_groups`).
    """
    target = masks.target
    if prompt_type == "masks":
        return target[None].astype(np.float32)
    if prompt_type != "parsing":
        raise ConfigError(f"prompt_type: expected 'masks' or 'parsing', got {prompt_type!r}")
    g = prompt_grouping(grouping) if isinstance(grouping, str) else grouping
    if masks.parts is None or masks.table is None:
        raise PromptError(
            f"{masks.source}: a parsing-prompt model needs part labels (a part-label map and its "
            "table, e.g. kpr.masks.read_part_labels(path, 'lip')), got a person mask only"
        )
    feeds = class_groups(masks.table, g)[masks.parts] & target[..., None]
    return np.ascontiguousarray(feeds.transpose(2, 0, 1), dtype=np.float32)


def mask_prompt(
    masks: CropMasks | None,
    prompt_type: MaskPromptType,
    grouping: Grouping | str,
    out_hw: tuple[int, int],
    with_negatives: bool = True,
    with_background: bool = True,
) -> NDArray[np.float64]:
    """The prompt of one crop from its masks.

    Parameters
    ----------
    masks : CropMasks or None
        At any size (resampled to ``out_hw``); None = the empty prompt.
    prompt_type : {"masks", "parsing"}
    grouping : Grouping or str
        The model's prompt grouping (its groups are the ``parsing`` channels).
    out_hw : (int, int)
        The model's input (H, W).
    with_negatives, with_background : bool
        As for :func:`kpr.keypoints.build_prompt`.

    Returns
    -------
    ndarray, shape [2 + T, H, W], float64 in [0, 1]
        [background, other people, target channels…] with T = 1 (``masks``) or Kp
        (``parsing``); the channels switched off are removed.
    """
    out_size = as_hw(out_hw, "out_hw", PromptError)
    g = prompt_grouping(grouping) if isinstance(grouping, str) else grouping
    num_target = 1 if prompt_type == "masks" else g.num_parts
    if masks is None:
        prompt = np.zeros((2 + num_target, *out_size))
    else:
        source = np.concatenate(
            [
                np.zeros((1, *masks.hw), np.float32),
                masks.others[None].astype(np.float32),
                target_channels(masks, prompt_type, g),
            ]
        )
        prompt = _area_resize(source, out_size)
    if not with_negatives:
        prompt[1] = 0.0
    prompt[0] = np.clip(1.0 - prompt[1:].sum(axis=0), 0.0, 1.0)
    dropped = [c for c, keep in ((0, with_background), (1, with_negatives)) if not keep]
    return np.delete(prompt, dropped, axis=0) if dropped else prompt


class PromptLayout(Protocol):
    """The prompt fields a model config (``KPRConfig``) and a training data config share."""

    prompt_type: str
    prompt_grouping: str
    image_size: tuple[int, int]
    prompt_negatives: bool
    prompt_background: bool


def layout_mask_prompt(masks: CropMasks | None, layout: PromptLayout) -> NDArray[np.float64]:
    """:func:`mask_prompt` with the prompt type, grouping, size and channels of ``layout``."""
    return mask_prompt(
        masks,
        layout.prompt_type,  # type: ignore[arg-type]
        layout.prompt_grouping,
        layout.image_size,
        with_negatives=layout.prompt_negatives,
        with_background=layout.prompt_background,
    )
