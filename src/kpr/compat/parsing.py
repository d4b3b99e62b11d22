"""Migration aid: the official human-parsing → training-target pipeline."""

from __future__ import annotations

import numpy as np
import torch
from numpy.typing import ArrayLike

from kpr.data.parsing import scores_from_pifpaf, target_masks


def official_target_masks(
    pifpaf36: ArrayLike,
    grouping: str,
    image_hw: tuple[int, int],
    feat_hw: tuple[int, int],
) -> torch.Tensor:
    """The official ``target_masks`` of one PifPaf label array (test-time pipeline).

    Group the 36 fields into K parts (max, clipped to [0, 1]), resize bilinearly to ``image_hw``,
    prepend background = (max over parts < 0.5), softmax(15 · x) over channels, resize bilinearly
    (align_corners=False) to ``feat_hw``.

    Parameters
    ----------
    pifpaf36 : array_like, shape [36, h, w]
    grouping : str
        ``"five_v"`` or ``"eight"``.
    image_hw, feat_hw : (int, int)

    Returns
    -------
    Tensor, shape [K+1, Hf, Wf], float32
        Channel 0 is the background; ``kpr.data.parsing.pixel_labels`` gives the official labels.
    """
    scores = scores_from_pifpaf(np.asarray(pifpaf36, dtype=np.float32), grouping, image_hw)
    return target_masks(scores, feat_hw)
