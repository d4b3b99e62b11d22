"""Named model configurations (timm-style registry); ``kpr.create_model`` builds them."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from kpr.configuration import from_dict, merge, to_dict
from kpr.errors import ConfigError
from kpr.modeling.config import BackboneConfig, KPRConfig

_REGISTRY: dict[str, Callable[[], KPRConfig]] = {}


def register_model(name: str) -> Callable[[Callable[[], KPRConfig]], Callable[[], KPRConfig]]:
    def decorator(fn: Callable[[], KPRConfig]) -> Callable[[], KPRConfig]:
        if name in _REGISTRY:
            warnings.warn(
                f"register_model: {name!r} is already registered; the new definition replaces it",
                UserWarning,
                stacklevel=2,
            )
        _REGISTRY[name] = fn
        return fn

    return decorator


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def model_config(name: str, **overrides: Any) -> KPRConfig:
    """The config registered as ``name`` with field overrides; a mapping is merged into its field
    key by key (``backbone={"pretrained": path}`` keeps the other backbone fields)."""
    if name not in _REGISTRY:
        raise ConfigError(f"model {name!r} is not registered; known: {list_models()}")
    data = merge(to_dict(_REGISTRY[name]()), to_dict(overrides))
    return from_dict(KPRConfig, data, where=name)


@register_model("kpr_swinv2_base_256x128")
def _swinv2_base() -> KPRConfig:
    """The official ImageNet recipes for Occluded-Duke / Occ-PoseTrack (timm SwinV2-B, 256×128)."""
    return KPRConfig(
        backbone=BackboneConfig(name="swinv2_base_window12to16_192to256"),
        image_size=(256, 128),
        prompt_grouping="cck8",
        target_grouping="eight",
    )


@register_model("kpr_solider_swin_base_384x128")
def _solider_swin_base() -> KPRConfig:
    """The official SOLIDER recipes (SOLIDER Swin-B, 384×128, mean = std = 0.5)."""
    return KPRConfig(
        backbone=BackboneConfig(name="solider_swin", semantic_weight=0.2),
        image_size=(384, 128),
        prompt_grouping="cck6",
        target_grouping="five_v",
        pixel_mean=(0.5, 0.5, 0.5),
        pixel_std=(0.5, 0.5, 0.5),
    )


@register_model("kpr_tiny_128x64")
def _tiny() -> KPRConfig:
    """A compact SOLIDER-style Swin (embed 32, depths 2,2,2,2) for CPU training on small crops."""
    return KPRConfig(
        backbone=BackboneConfig(
            name="solider_swin", embed_dim=32, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8)
        ),
        image_size=(128, 64),
        prompt_grouping="cck8",
        target_grouping="eight",
        embedding_dim=128,
    )
