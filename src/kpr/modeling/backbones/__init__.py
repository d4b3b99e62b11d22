"""Promptable Swin backbones.

Every backbone exposes ``stage_dims``, ``embed(images) -> tokens [N, H/4, W/4, C0]`` and
``forward_stages(tokens) -> list of 4 [N, C_i, H_i, W_i]`` so that prompt and camera tokens can be
added between the two, the same way for every family.
"""

from __future__ import annotations

from torch import nn

from kpr.modeling.config import BackboneConfig


def build_backbone(config: BackboneConfig, image_size: tuple[int, int]) -> nn.Module:
    """Build the backbone named by ``config`` (never downloads weights)."""
    if config.family == "solider":
        from kpr.modeling.backbones.solider_swin import SoliderSwin

        kwargs = {
            k: v
            for k, v in (("embed_dim", config.embed_dim), ("depths", config.depths), ("num_heads", config.num_heads))
            if v is not None
        }
        backbone: nn.Module = SoliderSwin(
            **kwargs, drop_path_rate=config.drop_path_rate, semantic_weight=config.semantic_weight
        )
    else:
        from kpr.modeling.backbones.timm_swin import TimmSwin

        backbone = TimmSwin(config, image_size)
    if config.pretrained:
        backbone.load_pretrained(config.pretrained)
    return backbone
