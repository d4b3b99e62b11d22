"""timm Swin / SwinV2 as a promptable backbone.

Built with ``pretrained=False``: timm never downloads anything. Local weights are loaded by
:func:`kpr.checkpoint.load_pretrained_backbone`.
"""

from __future__ import annotations

import torch
from torch import nn

from kpr.errors import ConfigError
from kpr.modeling.config import BackboneConfig


class TimmSwin(nn.Module):
    """A timm Swin/SwinV2 whose stages are run one by one, features returned per stage.

    Stage outputs are returned without any norm (timm's final norm is not used), as the official
    promptable timm backbone does.
    """

    def __init__(self, config: BackboneConfig, image_size: tuple[int, int]):
        super().__init__()
        import timm

        kwargs: dict[str, object] = {
            "pretrained": False,
            "num_classes": 0,
            "global_pool": "",
            "img_size": tuple(image_size),
            "drop_path_rate": config.drop_path_rate,
        }
        for key in ("embed_dim", "depths", "num_heads"):
            if getattr(config, key) is not None:
                kwargs[key] = getattr(config, key)
        arch = config.name.split(".")[0]
        if not (timm.is_model(arch) and arch.startswith("swin")):
            raise ConfigError(
                f"backbone.name: {config.name!r} is neither a timm Swin/SwinV2 model nor "
                f"'solider_swin'; e.g. {timm.list_models('swin*')[:4]}"
            )
        self.model = timm.create_model(config.name, **kwargs)
        self.model.norm = nn.Identity()
        self.stage_dims = tuple(info["num_chs"] for info in self.model.feature_info)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """[N, 3, H, W] → [N, H/4, W/4, C0] patch tokens."""
        return self.model.patch_embed(images)

    def forward_stages(self, tokens: torch.Tensor) -> list[torch.Tensor]:
        """[N, H/4, W/4, C0] tokens → 4 stage outputs [N, C_i, H/2^(i+2), W/2^(i+2)]."""
        features = []
        x = tokens
        for layer in self.model.layers:
            x = layer(x)
            features.append(x.permute(0, 3, 1, 2))
        return features
