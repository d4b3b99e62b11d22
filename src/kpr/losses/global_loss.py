"""The training loss of a global-embedding model (``KPRConfig.head="global"``): BoT's identity +
batch-hard triplet on the one embedding, no part terms (there are no parts to predict)."""

from __future__ import annotations

import torch
from torch import nn

from kpr.losses.gilt import GiLtLoss, LossOutput, LossWeights, combine_terms, identity_loss
from kpr.losses.triplet import part_averaged_triplet_loss
from kpr.modeling.outputs import KPROutput


class GlobalLoss(nn.Module):
    """``id_global`` × identity loss on the BNNeck logits + ``triplet_parts`` × triplet loss on
    the BNNeck embedding — the weights GiLt gives the same two kinds of term."""

    def __init__(self, weights: LossWeights | None = None):
        super().__init__()
        self.weights = weights or LossWeights()

    def forward(
        self, out: KPROutput, pids: torch.Tensor, target_masks: torch.Tensor | None = None
    ) -> LossOutput:
        """``target_masks`` is accepted for the trainer's sake and ignored."""
        w = self.weights
        if out.id_logits is None or out.bn_embeddings is None:
            raise ValueError(
                "GlobalLoss needs a full forward pass of a model with identity classifiers "
                "(num_classes > 0)"
            )
        terms = {
            "id_global": (
                w.id_global,
                identity_loss(out.id_logits.global_, pids, w.label_smoothing),
            ),
            # On the BNNeck embedding (the one retrieval uses): batch normalisation keeps its
            # scale, whereas on the ReLU output before it the triplet term can shrink every
            # embedding to zero, where it has no gradient (measured with SGD and again with AdamW:
            # triplet at its margin, embedding variance 5e-5, chance-level Rank-1).
            "triplet_global": (
                w.triplet_parts,
                part_averaged_triplet_loss(
                    out.bn_embeddings.global_.float().unsqueeze(1), pids, w.triplet_margin
                ),
            ),
        }
        return combine_terms(terms)


def build_loss(head: str, weights: LossWeights) -> nn.Module:
    """The loss for a model with ``KPRConfig.head`` = ``head``."""
    return GlobalLoss(weights) if head == "global" else GiLtLoss(weights)
