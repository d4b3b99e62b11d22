"""Body-part prediction loss: pixel-wise cross-entropy against human-parsing labels."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def part_prediction_loss(
    pixel_logits: torch.Tensor, target_masks: torch.Tensor, label_smoothing: float = 0.1
) -> torch.Tensor:
    """Cross-entropy of the pixel-to-part logits against the labels' argmax (ties → lowest index).

    pixel_logits [N, K+1, Hf, Wf]; target_masks [N, K+1, Hf, Wf] (soft labels, background first).
    """
    labels = target_masks.argmax(dim=1)
    return F.cross_entropy(pixel_logits.float(), labels, label_smoothing=label_smoothing)
