"""timm Swin / SwinV2 as a promptable backbone (built with ``pretrained=False``; weights are local)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from kpr.errors import CheckpointError, ConfigError
from kpr.modeling.config import BackboneConfig


@dataclass(frozen=True)
class LoadReport:
    """What a pretrained-weight load matched."""

    loaded: int
    missing: tuple[str, ...]
    unexpected: tuple[str, ...]


def read_weight_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a local weight file: ``.safetensors`` or a torch file read with ``weights_only``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: pretrained weight file not found")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    from kpr.checkpoint.official import safe_torch_load

    obj = safe_torch_load(path)
    for key in ("state_dict", "model", "module"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a dict of tensors")
    return {k.removeprefix("module."): v for k, v in obj.items() if isinstance(v, torch.Tensor)}


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
                f"backbone.name: {config.name!r} is not a timm Swin/SwinV2 model nor 'solider_swin'; "
                f"e.g. {timm.list_models('swin*')[:4]}"
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

    def load_pretrained(self, path: str | Path) -> LoadReport:
        """Load a local timm/Microsoft checkpoint through timm's own filter (resizes position tables)."""
        state = read_weight_file(path)
        filter_fn = getattr(sys.modules[type(self.model).__module__], "checkpoint_filter_fn", None)
        if filter_fn is not None:
            state = filter_fn(state, self.model)
        own = self.model.state_dict()
        matched = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
        if not matched:
            raise CheckpointError(f"{path}: no tensor matches backbone {type(self.model).__name__}")
        result = self.model.load_state_dict(matched, strict=False)
        return LoadReport(len(matched), tuple(result.missing_keys), tuple(sorted(set(state) - set(matched))))
