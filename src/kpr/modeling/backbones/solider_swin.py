"""The Swin transformer of the SOLIDER code base, as used by KPR's ``solider_swin`` backbones.

It differs from the Microsoft / timm Swin in ways that change the numbers, hence its own code:

* every stage runs its blocks first and merges patches at its *end*; the per-stage feature is the
  pre-merge output passed through that stage's own LayerNorm;
* windows are never clamped to the feature size: the grid is zero-padded on the bottom/right to a
  multiple of the window and odd blocks are always shifted by ``window // 2`` (so a 12×4 grid is
  padded to 14×7 and still shifted), with a −100 additive mask between shifted regions;
* patch merging concatenates each 2×2 neighbourhood in ``nn.Unfold`` channel order
  (channel-major, then the four offsets row by row), not Microsoft's block-concatenation order;
* SOLIDER's optional "semantic weight" modulates the tokens passed from one stage to the next.

Tokens are kept channels-last ([N, H, W, C]) inside the network; stage features are returned NCHW.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.serialization import safe_globals

from kpr.errors import CheckpointError, ConfigError

__all__ = [
    "PatchEmbed",
    "PatchMerging",
    "PretrainedLoadReport",
    "SoliderSwin",
    "WindowAttention",
    "convert_microsoft_swin_state_dict",
    "convert_official_state_dict",
    "convert_solider_pretrained_state_dict",
    "relative_position_index",
    "shift_window_mask",
]

SHIFT_MASK_VALUE = -100.0
PretrainedFormat = Literal["auto", "native", "official", "solider", "microsoft"]


def relative_position_index(window_size: int) -> Tensor:
    """Index of each (query, key) pair of a window into the relative position bias table.

    Parameters
    ----------
    window_size:
        Side w of the square window.

    Returns
    -------
    Tensor
        [w², w²] int64; entry (p, q) = (dy + w − 1)·(2w − 1) + (dx + w − 1) with (dy, dx) the offset
        of token p from token q, tokens numbered row by row.
    """
    ys, xs = torch.meshgrid(torch.arange(window_size), torch.arange(window_size), indexing="ij")
    coords = torch.stack((ys.flatten(), xs.flatten()))
    delta = coords[:, :, None] - coords[:, None, :] + (window_size - 1)
    return delta[0] * (2 * window_size - 1) + delta[1]


def _window_partition(x: Tensor, window_size: int) -> Tensor:
    """[N, H, W, C] (H, W multiples of w) → [N, nW, w², C], windows and tokens row by row."""
    n, h, w, c = x.shape
    x = x.view(n, h // window_size, window_size, w // window_size, window_size, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(n, -1, window_size * window_size, c)


def _window_merge(windows: Tensor, height: int, width: int, window_size: int) -> Tensor:
    """Inverse of :func:`_window_partition`: [N, nW, w², C] → [N, H, W, C]."""
    n, _, _, c = windows.shape
    x = windows.view(n, height // window_size, width // window_size, window_size, window_size, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(n, height, width, c)


def shift_window_mask(
    height: int, width: int, window_size: int, shift: int, device: torch.device | None = None
) -> Tensor:
    """Additive attention mask of shifted-window attention on a padded grid.

    After the cyclic shift by ``shift``, the grid is cut along each axis into the regions
    [0, S − w), [S − w, S − shift) and [S − shift, S) (S = padded size); tokens of one window may
    only attend to tokens of the same region pair.

    Parameters
    ----------
    height, width:
        Padded grid size (multiples of ``window_size``).
    window_size, shift:
        Window side w and shift (0 < shift < w).

    Returns
    -------
    Tensor
        [nW, w², w²] float32, 0 within a region and −100 across regions.
    """

    def region(size: int) -> Tensor:
        idx = torch.arange(size, device=device)
        return (idx >= size - window_size).long() + (idx >= size - shift).long()

    labels = region(height)[:, None] * 3 + region(width)[None, :]
    windows = _window_partition(labels[None, :, :, None], window_size)[0, :, :, 0]
    different = windows[:, :, None] != windows[:, None, :]
    return torch.zeros(different.shape, device=device).masked_fill(different, SHIFT_MASK_VALUE)


class DropPath(nn.Module):
    """Stochastic depth: drop a whole residual branch per sample while training."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


class PatchEmbed(nn.Module):
    """Non-overlapping patch embedding: Conv2d(k = s = patch) + LayerNorm, output channels-last.

    Inputs whose size is not a multiple of ``patch_size`` are zero-padded on the bottom/right.
    """

    def __init__(self, in_channels: int, dim: int, patch_size: int = 4):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_channels, dim, patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> Tensor:
        """[N, Cin, H, W] → [N, ⌈H/p⌉, ⌈W/p⌉, dim]."""
        pad_h, pad_w = -x.shape[-2] % self.patch_size, -x.shape[-1] % self.patch_size
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        return self.norm(self.proj(x).permute(0, 2, 3, 1))


class PatchMerging(nn.Module):
    """2×2 patch merging in ``nn.Unfold`` channel order → LayerNorm(4C) → Linear(4C → 2C, no bias).

    Merged channel ``4·c + 2·dy + dx`` holds channel ``c`` of the token at offset (dy, dx) in
    its 2×2 neighbourhood. Odd grids are zero-padded on the bottom/right first.
    """

    def __init__(self, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        """[N, H, W, C] → [N, ⌈H/2⌉, ⌈W/2⌉, 2C]."""
        n, h, w, c = x.shape
        if h % 2 or w % 2:
            x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
            h, w = h + h % 2, w + w % 2
        x = x.view(n, h // 2, 2, w // 2, 2, c).permute(0, 1, 3, 5, 2, 4)
        x = x.reshape(n, h // 2, w // 2, 4 * c)
        return self.reduction(self.norm(x))


class WindowAttention(nn.Module):
    """Multi-head self-attention inside windows with a learned relative position bias."""

    def __init__(self, dim: int, num_heads: int, window_size: int):
        super().__init__()
        self.num_heads = num_heads
        table_size = (2 * window_size - 1) ** 2
        self.relative_position_bias_table = nn.Parameter(torch.zeros(table_size, num_heads))
        self.register_buffer("relative_position_index", relative_position_index(window_size))
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def relative_position_bias(self) -> Tensor:
        """[heads, w², w²] bias gathered from the table."""
        length = self.relative_position_index.shape[0]
        bias = self.relative_position_bias_table[self.relative_position_index.flatten()]
        return bias.view(length, length, self.num_heads).permute(2, 0, 1)

    def forward(self, windows: Tensor, mask: Tensor | None = None) -> Tensor:
        """Attend within each window.

        Parameters
        ----------
        windows:
            [N, nW, w², C] tokens.
        mask:
            [nW, w², w²] additive shift mask, or ``None``.

        Returns
        -------
        Tensor
            [N, nW, w², C].
        """
        n, nw, length, c = windows.shape
        qkv = self.qkv(windows).view(n, nw, length, 3, self.num_heads, c // self.num_heads)
        q, k, v = qkv.permute(3, 0, 1, 4, 2, 5).unbind(0)
        bias = self.relative_position_bias()
        if mask is not None:
            bias = bias + mask.to(bias.dtype)[:, None]
        # SDPA's default scale is head_dim ** -0.5, the Swin scale; it matches the explicit
        # softmax(q·kᵀ·scale + bias) to float32 rounding.
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype))
        return self.proj(out.transpose(2, 3).reshape(n, nw, length, c))


class Mlp(nn.Module):
    """Linear(C → rC) → GELU → Linear(rC → C)."""

    def __init__(self, dim: int, hidden_dim: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


@dataclass(frozen=True)
class _WindowLayout:
    """Per-grid-size constants shared by the blocks of a stage."""

    pad_h: int
    pad_w: int
    shift_mask: Tensor | None


class SwinBlock(nn.Module):
    """Pre-norm (shifted-)window attention block followed by a pre-norm MLP block."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        window_size: int,
        shift: int,
        mlp_ratio: float,
        drop_path: float,
    ):
        super().__init__()
        self.window_size = window_size
        self.shift = shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, num_heads, window_size)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.drop_path = DropPath(drop_path)

    def forward(self, x: Tensor, layout: _WindowLayout) -> Tensor:
        """[N, H, W, C] → [N, H, W, C]."""
        _, h, w, _ = x.shape
        # Padding comes after norm1, so padded tokens are exact zeros entering the attention.
        y = F.pad(self.norm1(x), (0, 0, 0, layout.pad_w, 0, layout.pad_h))
        hp, wp = h + layout.pad_h, w + layout.pad_w
        if self.shift:
            y = torch.roll(y, (-self.shift, -self.shift), dims=(1, 2))
        mask = layout.shift_mask if self.shift else None
        windows = self.attn(_window_partition(y, self.window_size), mask)
        y = _window_merge(windows, hp, wp, self.window_size)
        if self.shift:
            y = torch.roll(y, (self.shift, self.shift), dims=(1, 2))
        x = x + self.drop_path(y[:, :h, :w])
        return x + self.drop_path(self.mlp(self.norm2(x)))


class SwinStage(nn.Module):
    """Blocks (even: plain windows, odd: shifted windows), then optional patch merging."""

    def __init__(
        self,
        dim: int,
        depth: int,
        num_heads: int,
        window_size: int,
        mlp_ratio: float,
        drop_paths: Sequence[float],
        downsample: bool,
    ):
        super().__init__()
        self.window_size = window_size
        self.shift = window_size // 2
        shifts = [self.shift if b % 2 else 0 for b in range(depth)]
        self.blocks = nn.ModuleList(
            SwinBlock(dim, num_heads, window_size, shift, mlp_ratio, drop_path)
            for shift, drop_path in zip(shifts, drop_paths)
        )
        self.downsample = PatchMerging(dim) if downsample else None
        self._layouts: dict[tuple[int, int, torch.device], _WindowLayout] = {}

    def _layout(self, height: int, width: int, device: torch.device) -> _WindowLayout:
        key = (height, width, device)
        layout = self._layouts.get(key)
        if layout is None:
            pad_h, pad_w = -height % self.window_size, -width % self.window_size
            mask = None
            if any(block.shift for block in self.blocks):
                padded_h, padded_w = height + pad_h, width + pad_w
                mask = shift_window_mask(padded_h, padded_w, self.window_size, self.shift, device)
            layout = self._layouts[key] = _WindowLayout(pad_h, pad_w, mask)
        return layout

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """[N, H, W, C] → (stage output [N, H, W, C], next-stage input [N, ⌈H/2⌉, ⌈W/2⌉, 2C])."""
        layout = self._layout(x.shape[1], x.shape[2], x.device)
        for block in self.blocks:
            x = block(x, layout)
        return x, (self.downsample(x) if self.downsample is not None else x)


@dataclass(frozen=True)
class PretrainedLoadReport:
    """What :meth:`SoliderSwin.load_pretrained` did.

    Attributes
    ----------
    loaded:
        Number of tensors copied into the model.
    missing:
        Model keys the file did not provide (left at their initial values).
    unexpected:
        File keys the model has no use for (ignored).
    resized:
        Relative position bias tables bicubically resized to the model's window.
    format:
        The file layout that was read (``native``, ``official``, ``solider`` or ``microsoft``).
    """

    loaded: int
    missing: tuple[str, ...]
    unexpected: tuple[str, ...]
    resized: tuple[str, ...]
    format: str


class SoliderSwin(nn.Module):
    """SOLIDER-code Swin transformer returning its four per-stage features.

    Parameters
    ----------
    embed_dim:
        Width C of stage 0; stage i has width C·2^i.
    depths, num_heads:
        Blocks and attention heads per stage.
    window_size:
        Attention window side (never clamped to the feature size).
    mlp_ratio:
        MLP hidden width / block width.
    drop_path_rate:
        Stochastic-depth probability of the last block; linearly spaced from 0 over all blocks.
    semantic_weight:
        SOLIDER's semantic weight w ≥ 0, or ``None`` to build the model without the (frozen)
        semantic modulation modules. With the modules built, :attr:`semantic_weight` can later be
        set to another value or to ``None`` (modulation off, weights kept).

    Attributes
    ----------
    stage_dims:
        (C, 2C, 4C, 8C) for four stages.
    """

    def __init__(
        self,
        embed_dim: int = 128,
        depths: Sequence[int] = (2, 2, 18, 2),
        num_heads: Sequence[int] = (4, 8, 16, 32),
        window_size: int = 7,
        mlp_ratio: float = 4.0,
        drop_path_rate: float = 0.1,
        semantic_weight: float | None = None,
    ):
        super().__init__()
        depths, num_heads = tuple(depths), tuple(num_heads)
        if not depths or len(depths) != len(num_heads) or min(depths) < 1:
            raise ConfigError(
                f"backbone: depths {depths} and num_heads {num_heads} must be non-empty, "
                "equally long and ≥ 1"
            )
        stage_dims = tuple(embed_dim * 2**i for i in range(len(depths)))
        for dim, heads in zip(stage_dims, num_heads):
            if heads < 1 or dim % heads:
                raise ConfigError(
                    f"backbone: stage width {dim} is not divisible by num_heads {heads}"
                )
        if window_size < 1:
            raise ConfigError(f"backbone: window_size must be ≥ 1, got {window_size}")
        self.embed_dim = embed_dim
        self.stage_dims = stage_dims
        self.window_size = window_size
        self.patch_embed = PatchEmbed(3, embed_dim)
        total = sum(depths)
        drop_paths = [drop_path_rate * i / max(total - 1, 1) for i in range(total)]
        starts = [sum(depths[:i]) for i in range(len(depths))]
        self.stages = nn.ModuleList(
            SwinStage(
                dim,
                depth,
                heads,
                window_size,
                mlp_ratio,
                drop_paths[start : start + depth],
                downsample=i < len(depths) - 1,
            )
            for i, (dim, depth, heads, start) in enumerate(
                zip(stage_dims, depths, num_heads, starts)
            )
        )
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for dim in stage_dims)
        self.semantic_embed_w: nn.ModuleList | None = None
        self.semantic_embed_b: nn.ModuleList | None = None
        if semantic_weight is not None:
            # Module i feeds stage i + 1; the last has no consumer but exists in SOLIDER weights.
            next_dims = stage_dims[1:] + stage_dims[-1:]
            self.semantic_embed_w = nn.ModuleList(nn.Linear(2, dim) for dim in next_dims)
            self.semantic_embed_b = nn.ModuleList(nn.Linear(2, dim) for dim in next_dims)
        self._init_weights()
        self._semantic_weight: float | None = None
        self.semantic_weight = semantic_weight

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, WindowAttention):
                nn.init.trunc_normal_(module.relative_position_bias_table, std=0.02)
        for modules in (self.semantic_embed_w, self.semantic_embed_b):
            if modules is not None:
                modules.requires_grad_(False)

    @property
    def semantic_weight(self) -> float | None:
        """SOLIDER semantic weight w applied between stages, or ``None`` for no modulation."""
        return self._semantic_weight

    @semantic_weight.setter
    def semantic_weight(self, value: float | None) -> None:
        if value is None:
            self._semantic_weight = None
            return
        if self.semantic_embed_w is None:
            raise ConfigError(
                "backbone.semantic_weight: this model was built without semantic modules "
                "(semantic_weight=None); build it with a weight to use one"
            )
        value = float(value)
        if not math.isfinite(value) or value < 0:
            raise ConfigError(
                f"backbone.semantic_weight: must be a number ≥ 0 or None, got {value} "
                "(the official config's negative values mean None)"
            )
        self._semantic_weight = value

    def embed(self, images: Tensor) -> Tensor:
        """Patch-embed images.

        Parameters
        ----------
        images:
            [N, 3, H, W].

        Returns
        -------
        Tensor
            [N, Hp, Wp, C] tokens with Hp = ⌈H/4⌉, Wp = ⌈W/4⌉.
        """
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images: expected [N, 3, H, W], got {list(images.shape)}")
        return self.patch_embed(images)

    def forward_stages(self, tokens: Tensor) -> list[Tensor]:
        """Run the stages on (possibly prompt/camera-augmented) patch tokens.

        Parameters
        ----------
        tokens:
            [N, Hp, Wp, C].

        Returns
        -------
        list of Tensor
            One feature per stage, [N, C·2^i, ⌈Hp/2^i⌉, ⌈Wp/2^i⌉] (NCHW views of channels-last
            memory): the stage's pre-merge output after its LayerNorm.
        """
        if tokens.ndim != 4 or tokens.shape[-1] != self.embed_dim:
            raise ValueError(
                f"tokens: expected [N, Hp, Wp, {self.embed_dim}], got {list(tokens.shape)}"
            )
        semantic = None
        if self._semantic_weight is not None:
            # Built the official way (w in the tokens' dtype, then 1 − w) for bit-identical inputs.
            w = tokens.new_full((tokens.shape[0], 1), self._semantic_weight)
            semantic = torch.cat((w, 1 - w), dim=-1)
        features = []
        x = tokens
        last = len(self.stages) - 1
        for i, (stage, norm) in enumerate(zip(self.stages, self.norms)):
            out, x = stage(x)
            features.append(norm(out).permute(0, 3, 1, 2))
            # The last stage's modulation would only touch tokens nobody reads.
            if semantic is not None and i < last:
                scale = F.softplus(self.semantic_embed_w[i](semantic))
                shift = self.semantic_embed_b[i](semantic)
                x = x * scale[:, None, None, :] + shift[:, None, None, :]
        return features

    def forward(self, images: Tensor) -> list[Tensor]:
        """[N, 3, H, W] → the features of :meth:`forward_stages` (no prompt, no camera)."""
        return self.forward_stages(self.embed(images))

    def load_pretrained(
        self, path: str | Path, *, format: PretrainedFormat = "auto"
    ) -> PretrainedLoadReport:
        """Load backbone weights from a local file.

        Parameters
        ----------
        path:
            A ``.safetensors`` file or a torch file (read with ``weights_only=True``): SOLIDER's
            ``swin_base_reid.pth``, a Microsoft Swin checkpoint (e.g. ImageNet-22k Swin-B), a
            state_dict in the official (mmcv) naming, or this module's own state_dict.
        format:
            The file layout; ``auto`` detects it from the key names.

        Returns
        -------
        PretrainedLoadReport
            Missing, unexpected and resized keys. Relative position tables of another window are
            bicubically resized; ``relative_position_index`` buffers are derived from the window and
            are never reported missing.

        Raises
        ------
        CheckpointError
            If the file cannot be read safely, no tensor of it fits this model, or a tensor has a
            shape this model cannot take.
        """
        converters: dict[str, Callable[..., dict[str, Tensor]]] = {
            "native": lambda sd, strict: dict(sd),
            "official": convert_official_state_dict,
            "solider": convert_solider_pretrained_state_dict,
            "microsoft": convert_microsoft_swin_state_dict,
        }
        if format != "auto" and format not in converters:
            raise ConfigError(
                f"format: expected one of {sorted(converters)} or 'auto', got {format!r}"
            )
        path = Path(path)
        flat = _strip_module(_unwrap_checkpoint(_read_weight_file(path), path))
        kind = _detect_format(flat, self.state_dict().keys(), path) if format == "auto" else format
        try:
            converted = converters[kind](flat, strict=False)
        except CheckpointError as exc:
            raise CheckpointError(f"{path}: {exc}") from None
        return self._load_converted(converted, path, kind)

    def _load_converted(
        self, state: Mapping[str, Tensor], path: Path, kind: str
    ) -> PretrainedLoadReport:
        own = self.state_dict()
        accepted: dict[str, Tensor] = {}
        resized: list[str] = []
        for key, value in state.items():
            if key not in own:
                continue
            target = own[key]
            if value.shape != target.shape:
                if key.endswith("relative_position_index"):
                    continue
                is_table = key.endswith("relative_position_bias_table")
                if is_table and value.shape[1:] == target.shape[1:]:
                    value = _resize_bias_table(value, target.shape[0], key, path)
                    resized.append(key)
                else:
                    raise CheckpointError(
                        f"{path}: {key} has shape {list(value.shape)}, "
                        f"the model expects {list(target.shape)}"
                    )
            accepted[key] = value
        if not accepted:
            raise CheckpointError(f"{path}: no tensor of this file fits the SOLIDER Swin backbone")
        self.load_state_dict(accepted, strict=False)
        missing = tuple(
            k for k in own if k not in accepted and not k.endswith("relative_position_index")
        )
        unexpected = tuple(k for k in state if k not in own)
        return PretrainedLoadReport(len(accepted), missing, unexpected, tuple(resized), kind)


def _resize_bias_table(table: Tensor, length: int, key: str, path: Path) -> Tensor:
    """Bicubically resize a [(2w−1)², heads] table to [length, heads]."""
    side_in, side_out = math.isqrt(table.shape[0]), math.isqrt(length)
    if side_in**2 != table.shape[0] or side_out**2 != length:
        raise CheckpointError(f"{path}: {key} of length {table.shape[0]} is not a square table")
    heads = table.shape[1]
    grid = table.float().T.reshape(1, heads, side_in, side_in)
    grid = F.interpolate(grid, size=(side_out, side_out), mode="bicubic", align_corners=False)
    return grid.reshape(heads, length).T.to(table.dtype)


def _read_weight_file(path: Path) -> Any:
    if not path.is_file():
        raise CheckpointError(f"{path}: pretrained weight file not found")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except (SafetensorError, OSError) as exc:
            raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from None
    from kpr.checkpoint.official import safe_torch_load

    # Self-supervised (DINO-style) training files such as SOLIDER's also pickle their argparse
    # options; a Namespace only carries plain attributes, so it is safe to rebuild.
    with safe_globals([argparse.Namespace]):
        return safe_torch_load(path)


def _unwrap_checkpoint(obj: Any, source: str | Path = "checkpoint") -> dict[str, Tensor]:
    """Take ``teacher`` if present, then ``state_dict`` or ``model``; require tensors only."""
    if isinstance(obj, Mapping) and isinstance(obj.get("teacher"), Mapping):
        obj = obj["teacher"]
    for field in ("state_dict", "model"):
        if isinstance(obj, Mapping) and isinstance(obj.get(field), Mapping):
            obj = obj[field]
            break
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(f"{source}: expected a non-empty dict of tensors")
    for key, value in obj.items():
        if not isinstance(value, Tensor):
            raise CheckpointError(
                f"{source}: entry {key!r} is a {type(value).__name__}, not a tensor"
            )
    return dict(obj)


def _strip_module(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    return {key.removeprefix("module."): value for key, value in state.items()}


def _detect_format(state: Mapping[str, Tensor], own_keys: Any, path: Path) -> str:
    keys = list(state)
    if any(k.startswith("backbone.") for k in keys):
        return "solider"
    if any(k.startswith("layers.") for k in keys):
        return "microsoft"
    if any(".w_msa." in k or k.startswith("patch_embed.projection.") for k in keys):
        return "official"
    if set(keys) & set(own_keys):
        return "native"
    raise CheckpointError(
        f"{path}: no known Swin key layout (SOLIDER 'backbone.*', Microsoft 'layers.*', "
        f"official 'stages.*.attn.w_msa.*'); first keys: {keys[:3]}"
    )


_BLOCK = r"stages\.(\d+)\.blocks\.(\d+)\."
_DOWNSAMPLE = r"{stages}\.(\d+)\.downsample\.(norm\.weight|norm\.bias|reduction\.weight)"
_OFFICIAL_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), replacement)
    for pattern, replacement in (
        (r"patch_embed\.projection\.(weight|bias)", r"patch_embed.proj.\1"),
        (r"patch_embed\.norm\.(weight|bias)", r"patch_embed.norm.\1"),
        (_BLOCK + r"(norm1|norm2)\.(weight|bias)", r"stages.\1.blocks.\2.\3.\4"),
        (
            _BLOCK + r"attn\.w_msa\.(relative_position_bias_table|relative_position_index)",
            r"stages.\1.blocks.\2.attn.\3",
        ),
        (_BLOCK + r"attn\.w_msa\.(qkv|proj)\.(weight|bias)", r"stages.\1.blocks.\2.attn.\3.\4"),
        (_BLOCK + r"ffn\.layers\.0\.0\.(weight|bias)", r"stages.\1.blocks.\2.mlp.fc1.\3"),
        (_BLOCK + r"ffn\.layers\.1\.(weight|bias)", r"stages.\1.blocks.\2.mlp.fc2.\3"),
        (_DOWNSAMPLE.format(stages="stages"), r"stages.\1.downsample.\2"),
        (r"norm(\d+)\.(weight|bias)", r"norms.\1.\2"),
        (r"semantic_embed_(w|b)\.(\d+)\.(weight|bias)", r"semantic_embed_\1.\2.\3"),
    )
)


def _rename(
    state: Mapping[str, Tensor],
    rules: Sequence[tuple[re.Pattern[str], str]],
    strict: bool,
    layout: str,
) -> dict[str, Tensor]:
    out: dict[str, Tensor] = {}
    unknown: list[str] = []
    for key, value in state.items():
        for pattern, replacement in rules:
            if pattern.fullmatch(key):
                out[pattern.sub(replacement, key)] = value
                break
        else:
            unknown.append(key)
            out[key] = value
    if strict and unknown:
        more = f" (+{len(unknown) - 8} more)" if len(unknown) > 8 else ""
        shown = ", ".join(unknown[:8]) + more
        raise CheckpointError(f"unknown {layout} SOLIDER-Swin key(s): {shown}")
    return out


def convert_official_state_dict(
    sd: Mapping[str, Tensor], *, strict: bool = True
) -> dict[str, Tensor]:
    """Rename official (mmcv-style) SOLIDER-Swin keys to :class:`SoliderSwin` keys.

    Parameters
    ----------
    sd:
        Keys relative to ``backbone_appearance_feature_extractor.model.`` of a KPR checkpoint, e.g.
        ``stages.0.blocks.1.attn.w_msa.qkv.weight``, ``stages.0.downsample.reduction.weight``,
        ``norm0.weight``, ``patch_embed.projection.weight``, ``semantic_embed_w.0.weight``. Patch
        merging weights are taken as already in unfold order.
    strict:
        Raise on keys that are not SOLIDER-Swin keys; otherwise pass them through unchanged.

    Returns
    -------
    dict
        The same tensors (not copied) under this module's names.

    Raises
    ------
    CheckpointError
        Naming the unknown keys (``strict`` only).
    """
    return _rename(sd, _OFFICIAL_RULES, strict, "official")


_MICROSOFT_BLOCK = r"layers\.(\d+)\.blocks\.(\d+)\."
_MICROSOFT_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), replacement)
    for pattern, replacement in (
        (r"patch_embed\.proj\.(weight|bias)", r"patch_embed.projection.\1"),
        (r"patch_embed\.norm\.(weight|bias)", r"patch_embed.norm.\1"),
        (_MICROSOFT_BLOCK + r"(norm1|norm2)\.(weight|bias)", r"stages.\1.blocks.\2.\3.\4"),
        (
            _MICROSOFT_BLOCK + r"attn\.(relative_position_bias_table|relative_position_index|"
            r"qkv\.weight|qkv\.bias|proj\.weight|proj\.bias)",
            r"stages.\1.blocks.\2.attn.w_msa.\3",
        ),
        (_MICROSOFT_BLOCK + r"mlp\.fc1\.(weight|bias)", r"stages.\1.blocks.\2.ffn.layers.0.0.\3"),
        (_MICROSOFT_BLOCK + r"mlp\.fc2\.(weight|bias)", r"stages.\1.blocks.\2.ffn.layers.1.\3"),
        (_DOWNSAMPLE.format(stages="layers"), r"stages.\1.downsample.\2"),
    )
)
_MICROSOFT_DROPPED = re.compile(r"head\..*|norm\.(weight|bias)|" + _MICROSOFT_BLOCK + r"attn_mask")


def _concat_to_unfold_order(tensor: Tensor, dim: int) -> Tensor:
    """Reorder a 4C axis from Microsoft's concat order to unfold order.

    Microsoft concatenates four C-blocks for the offsets (dy, dx) = (0,0), (1,0), (0,1), (1,1);
    unfold puts channel c of offset (dy, dx) at 4·c + 2·dy + dx.
    """
    size = tensor.shape[dim]
    if size % 4:
        raise CheckpointError(f"patch merging axis of size {size} is not a multiple of 4")
    moved = tensor.movedim(dim, -1)
    blocks = moved.reshape(*moved.shape[:-1], 4, size // 4)[..., [0, 2, 1, 3], :]
    return blocks.transpose(-1, -2).reshape(moved.shape).movedim(-1, dim)


def convert_microsoft_swin_state_dict(
    sd: Mapping[str, Any], *, strict: bool = True
) -> dict[str, Tensor]:
    """Convert a Microsoft Swin checkpoint (e.g. ImageNet-22k Swin-B) to :class:`SoliderSwin` keys.

    Parameters
    ----------
    sd:
        The state_dict (``layers.{s}.blocks.{b}.attn.qkv.weight``, ``mlp.fc1``,
        ``patch_embed.proj``, ``layers.{s}.downsample.{reduction,norm}``…) or a checkpoint holding
        it under ``model``.
        ``head.*``, the final ``norm.*`` and ``attn_mask`` buffers are dropped. Patch-merging
        weights are reordered from concat to unfold order.
    strict:
        Raise on keys that are not Microsoft Swin keys; otherwise pass them through unchanged.

    Returns
    -------
    dict
        Tensors under this module's names. Relative position tables and index buffers are kept
        at their stored size; :meth:`SoliderSwin.load_pretrained` adapts them to the model's window.

    Raises
    ------
    CheckpointError
        Naming the unknown keys (``strict`` only).
    """
    state = _strip_module(_unwrap_checkpoint(sd))
    state = {k: v for k, v in state.items() if not _MICROSOFT_DROPPED.fullmatch(k)}
    renamed = _rename(state, _MICROSOFT_RULES, strict, "Microsoft")
    for key, value in renamed.items():
        if re.fullmatch(r"stages\.\d+\.downsample\.reduction\.weight", key):
            renamed[key] = _concat_to_unfold_order(value, dim=1)
        elif re.fullmatch(r"stages\.\d+\.downsample\.norm\.(weight|bias)", key):
            renamed[key] = _concat_to_unfold_order(value, dim=0)
    return convert_official_state_dict(renamed, strict=strict)


def convert_solider_pretrained_state_dict(
    checkpoint: Mapping[str, Any], *, strict: bool = True
) -> dict[str, Tensor]:
    """Convert SOLIDER's pretrained ``swin_base_reid.pth`` to :class:`SoliderSwin` keys.

    Parameters
    ----------
    checkpoint:
        The loaded file: ``teacher`` is taken if present, then ``state_dict`` or ``model``; only
        ``backbone.*`` keys are kept (``module.`` stripped). Keys are in the official mmcv naming,
        with patch-merging weights already in unfold order.
    strict:
        Raise on backbone keys that are not SOLIDER-Swin keys; otherwise pass them through.

    Raises
    ------
    CheckpointError
        If there is no ``backbone.*`` key, or (``strict``) naming unknown keys.
    """
    state = _strip_module(_unwrap_checkpoint(checkpoint))
    backbone = {
        k.removeprefix("backbone."): v for k, v in state.items() if k.startswith("backbone.")
    }
    if not backbone:
        raise CheckpointError("no 'backbone.*' key: not a SOLIDER pretrained checkpoint")
    return convert_official_state_dict(_strip_module(backbone), strict=strict)
