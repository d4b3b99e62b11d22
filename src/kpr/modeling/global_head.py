"""Global head: one average-pooled embedding per crop (the paper's no-PBH ablation baseline)."""

from __future__ import annotations

import torch
from torch import nn

from kpr.modeling.outputs import Branches
from kpr.modeling.part_head import BNNeck, EmbeddingReduction, global_average


class GlobalHead(nn.Module):
    """From fused features [N, C, Hf, Wf] to a single embedding: average pooling, the same
    reduction and BNNeck as the part head's global branch, and nothing that compares parts.

    Retrieval uses the BNNeck embedding as slot 0 ([N, 1, D]) with visibility always true, so the
    part distance reduces to the distance of the two global embeddings.
    """

    def __init__(self, dim: int, embedding_dim: int, num_classes: int, binary_visibility: bool):
        super().__init__()
        self.binary_visibility = binary_visibility
        self.reduce_global = EmbeddingReduction(dim, embedding_dim)
        self.neck_global = BNNeck(embedding_dim, num_classes)

    def forward(self, features: torch.Tensor, full: bool) -> dict[str, object]:
        """Fields of :class:`~kpr.modeling.outputs.KPROutput`; ``part_masks``/``pixel_logits``
        are None, and the branches hold only ``global_``."""
        embedding = self.reduce_global(global_average(features))
        bn, logits = self.neck_global(embedding)
        n = features.shape[0]
        dtype = torch.bool if self.binary_visibility else features.dtype
        out: dict[str, object] = {
            "embeddings": bn.unsqueeze(1),
            "visibility": torch.ones(n, 1, dtype=dtype, device=features.device),
            "part_masks": None,
            "pixel_logits": None,
        }
        if full:
            out.update(
                features=features,
                branch_embeddings=Branches(global_=embedding),
                bn_embeddings=Branches(global_=bn),
                id_logits=None if logits is None else Branches(global_=logits),
            )
        return out
