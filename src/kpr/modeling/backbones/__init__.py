"""Promptable Swin backbones.

Every backbone exposes ``stage_dims``, ``embed(images) -> tokens [N, H/4, W/4, C0]`` and
``forward_stages(tokens) -> list of 4 [N, C_i, H_i, W_i]`` so that prompt and camera tokens can be
added between the two, the same way for every family. Backbones are architecture only: weights
(``BackboneConfig.pretrained``) are loaded by :func:`kpr.checkpoint.build_model`.
"""

from __future__ import annotations

from torch import nn

from kpr.modeling.config import BackboneConfig


def build_backbone(config: BackboneConfig, image_size: tuple[int, int]) -> nn.Module:
    """Build the backbone named by ``config``, randomly initialised (``config.pretrained`` is not
    read here; see :func:`kpr.checkpoint.build_model`)."""
    if config.family == "solider":
        from kpr.modeling.backbones.solider_swin import SoliderSwin

        sizes = ("embed_dim", "depths", "num_heads")
        kwargs = {k: getattr(config, k) for k in sizes if getattr(config, k) is not None}
        return SoliderSwin(
            **kwargs, drop_path_rate=config.drop_path_rate, semantic_weight=config.semantic_weight
        )
    from kpr.modeling.backbones.timm_swin import TimmSwin

    return TimmSwin(config, image_size)
