"""Typed model outputs."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Branches:
    """One tensor per embedding branch. ``parts`` is [N, K, …]; the others are [N, …]. A global
    head (``KPRConfig.head="global"``) has only ``global_``."""

    global_: torch.Tensor
    foreground: torch.Tensor | None = None
    background: torch.Tensor | None = None
    concat: torch.Tensor | None = None
    parts: torch.Tensor | None = None


@dataclass(frozen=True)
class KPROutput:
    """What a KPR forward pass returns.

    Attributes
    ----------
    embeddings:
        [N, 1+K, D] retrieval embeddings: slot 0 = BNNeck foreground embedding, slots 1..K = part
        embeddings (raw; L2-normalise each slot before comparing).
    visibility:
        [N, 1+K] bool (binary mode) or float in [0, 1] (continuous mode); slot 0 is the foreground.
    part_masks:
        [N, K+1, Hf, Wf] softmax over the pixel classifier's logits; channel 0 = background
        (None for a global head).
    pixel_logits:
        [N, K+1, Hf, Wf] pixel-to-part logits (None for a global head).
    features:
        [N, Df, Hf, Wf] fused spatial features (only with ``full=True`` or in training).
    branch_embeddings, bn_embeddings:
        Reduced embeddings of every branch, before and after the BNNeck (full/training only).
    id_logits:
        Identity-classifier logits of every branch (only when the model has classifiers).
    """

    embeddings: torch.Tensor
    visibility: torch.Tensor
    part_masks: torch.Tensor | None
    pixel_logits: torch.Tensor | None
    features: torch.Tensor | None = None
    branch_embeddings: Branches | None = None
    bn_embeddings: Branches | None = None
    id_logits: Branches | None = None

    @property
    def parts(self) -> torch.Tensor:
        """[N, K, D] part embeddings."""
        return self.embeddings[:, 1:]

    @property
    def foreground(self) -> torch.Tensor:
        """[N, D] BNNeck foreground embedding."""
        return self.embeddings[:, 0]
