"""GiLt: identity losses on global, foreground and concatenated parts + part-averaged triplet,
combined with the part-prediction loss, as the official code weights them."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from kpr.losses.part_prediction import part_prediction_loss
from kpr.losses.triplet import part_averaged_triplet_loss
from kpr.modeling.outputs import KPROutput


@dataclass(frozen=True)
class LossWeights:
    """Loss weights. ``part_prediction`` is 0.35 in the official code (the paper says 0.3)."""

    id_global: float = 1.0
    id_foreground: float = 1.0
    id_concat: float = 1.0
    triplet_parts: float = 1.0
    part_prediction: float = 0.35
    label_smoothing: float = 0.1
    triplet_margin: float = 0.3
    part_label_smoothing: float = 0.1


@dataclass(frozen=True)
class LossOutput:
    total: torch.Tensor
    components: dict[str, float]


def identity_loss(logits: torch.Tensor, pids: torch.Tensor, smoothing: float) -> torch.Tensor:
    """Label-smoothed cross-entropy of identity logits [N, C] (in float32 under autocast)."""
    return F.cross_entropy(logits.float(), pids, label_smoothing=smoothing)


def combine_terms(terms: dict[str, tuple[float, torch.Tensor]]) -> LossOutput:
    """{name: (weight, value)} → the weighted sum (zero weights skipped) and every term's value."""
    total = sum(weight * value for weight, value in terms.values() if weight != 0)
    return LossOutput(total, {name: float(value.detach()) for name, (_, value) in terms.items()})


class GiLtLoss(nn.Module):
    """Total training loss of a KPR forward pass (training mode, with identity classifiers)."""

    def __init__(self, weights: LossWeights = LossWeights()):
        super().__init__()
        self.weights = weights

    def forward(
        self, out: KPROutput, pids: torch.Tensor, target_masks: torch.Tensor | None
    ) -> LossOutput:
        w = self.weights
        if out.id_logits is None or out.branch_embeddings is None:
            raise ValueError(
                "GiLtLoss needs a full forward pass of a model with identity classifiers "
                "(num_classes > 0)"
            )
        terms: dict[str, tuple[float, torch.Tensor]] = {
            "id_global": (
                w.id_global,
                identity_loss(out.id_logits.global_, pids, w.label_smoothing),
            ),
            "id_foreground": (
                w.id_foreground,
                identity_loss(out.id_logits.foreground, pids, w.label_smoothing),
            ),
            "id_concat": (
                w.id_concat,
                identity_loss(out.id_logits.concat, pids, w.label_smoothing),
            ),
            "triplet_parts": (
                w.triplet_parts,
                part_averaged_triplet_loss(
                    out.branch_embeddings.parts.float(), pids, w.triplet_margin
                ),
            ),
        }
        if target_masks is not None and w.part_prediction > 0:
            terms["part_prediction"] = (
                w.part_prediction,
                part_prediction_loss(out.pixel_logits, target_masks, w.part_label_smoothing),
            )
        return combine_terms(terms)
