"""timm Swin / SwinV2 as a promptable backbone.

Built with ``pretrained=False``: timm never downloads anything. Local weights are loaded by
:func:`kpr.checkpoint.load_pretrained_backbone`.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

from kpr.errors import ConfigError
from kpr.modeling.backbones.window_sdpa import InferenceMaskCache, window_sdpa
from kpr.modeling.config import BackboneConfig
from kpr.modeling.linear import linear


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
        for module in self.model.modules():
            if is_v2_attention(module):
                module.forward = functools.partial(
                    swinv2_window_attention, module, cache=InferenceMaskCache()
                )
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


def is_v2_attention(module: nn.Module) -> bool:
    return type(module).__name__ == "WindowAttention" and hasattr(module, "cpb_mlp")


def swinv2_window_attention(
    attn: nn.Module,
    x: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    cache: InferenceMaskCache | None = None,
) -> torch.Tensor:
    """timm SwinV2's window attention through SDPA's fused kernel, the same function.

    timm computes softmax(cos(q, k)·τ + 16·σ(cpb) [+ mask])·v with explicit products; here the
    scale τ goes into the normalised queries and the bias (and shift mask) into a 4-D additive
    mask over [N, nW·heads], which takes the fused CPU kernel (its reference path otherwise).

    x [N·nW, L, C] → [N·nW, L, C]; mask [nW, L, L] or None; ``cache`` keeps the bias between
    calls without autograd (:class:`~kpr.modeling.backbones.window_sdpa.InferenceMaskCache`).
    """
    b_, length, c = x.shape
    heads = attn.num_heads
    if attn.q_bias is None:
        qkv = attn.qkv(x)
    else:
        bias = torch.cat((attn.q_bias, attn.k_bias, attn.v_bias))
        qkv = attn.qkv(x) + bias if attn.qkv_bias_separate else linear(x, attn.qkv.weight, bias)
    q, k, v = qkv.reshape(b_, length, 3, heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
    scale = torch.clamp(attn.logit_scale, max=math.log(1.0 / 0.01)).exp()  # [heads, 1, 1]
    q = F.normalize(q, dim=-1) * scale
    k = F.normalize(k, dim=-1)

    def bias() -> torch.Tensor:  # [heads, L, L]
        table = attn.cpb_mlp(attn.relative_coords_table).view(-1, heads)
        gathered = table[attn.relative_position_index.view(-1)].view(length, length, heads)
        return 16 * torch.sigmoid(gathered.permute(2, 0, 1))

    windows = 1 if mask is None else mask.shape[0]
    shape = (b_ // windows, windows, heads, length, -1)
    out = window_sdpa(
        *(t.reshape(shape) for t in (q, k, v)),
        bias,
        mask,
        scale=1.0,
        dropout_p=attn.attn_drop.p if attn.training else 0.0,
        cache=cache,
        sources=(
            *attn.cpb_mlp.parameters(),
            attn.relative_coords_table,
            attn.relative_position_index,
        ),
    )
    out = out.reshape(b_, heads, length, -1).transpose(1, 2).reshape(b_, length, c)
    return attn.proj_drop(attn.proj(out))
