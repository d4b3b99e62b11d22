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
Weights in the official, SOLIDER and Microsoft layouts are converted and loaded by
:mod:`kpr.checkpoint`; this module is the architecture only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kpr.errors import ConfigError
from kpr.modeling.backbones.window_sdpa import InferenceMaskCache, window_sdpa
from kpr.modeling.patch_embed import PatchEmbed

__all__ = [
    "PatchEmbed",
    "PatchMerging",
    "SoliderSwin",
    "CompactLayout",
    "CompactWindows",
    "WindowAttention",
    "compact_bias",
    "compact_windows",
    "relative_position_index",
    "shift_window_mask",
    "window_route",
]

SHIFT_MASK_VALUE = -100.0
# The logit of a key slot that holds no key: its softmax weight is exactly 0, and (finite, unlike
# −inf) it keeps the log-sum-exp over a window without padding, and its gradient, finite.
_NO_KEY = -1e9
# Compact windows are used where they cut a layout's attention products to this share or less.
_COMPACT_AT_MOST = 0.8


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
        self.mask_cache = InferenceMaskCache()

    def relative_position_bias(self) -> Tensor:
        """[heads, w², w²] bias gathered from the table."""
        length = self.relative_position_index.shape[0]
        bias = self.relative_position_bias_table[self.relative_position_index.flatten()]
        return bias.view(length, length, self.num_heads).permute(2, 0, 1)

    def attend(self, qkv: Tensor, num_windows: int, mask: Tensor | None = None) -> Tensor:
        """Attention of windows whose qkv projection is given, before the output projection.

        Head-major in and out, so that the windows go to SDPA as one [N, heads·nW, w², d] batch
        without a copy (the caller's gathers lay the tokens out so).

        Parameters
        ----------
        qkv:
            [N, 3·heads, nW·w², d]: :attr:`qkv` of the window tokens, q, k, v then heads.
        num_windows:
            nW.
        mask:
            [nW, w², w²] additive shift mask, or ``None``.

        Returns
        -------
        Tensor
            [N, heads, nW·w², d].
        """
        n, _, slots, d = qkv.shape
        shape = (n, self.num_heads, num_windows, slots // num_windows, d)
        q, k, v = (t.view(shape) for t in qkv.chunk(3, dim=1))
        # SDPA's default scale is head_dim ** -0.5, the Swin scale; it matches the explicit
        # softmax(q·kᵀ·scale + bias) to float32 rounding.
        out = window_sdpa(
            q,
            k,
            v,
            self.relative_position_bias,
            mask,
            heads_first=True,
            cache=self.mask_cache,
            sources=(self.relative_position_bias_table, self.relative_position_index),
        )
        return out.view(n, self.num_heads, slots, d)

    def attend_compact(
        self, q: Tensor, kv: Tensor, compact: CompactWindows, mask: Tensor | None = None
    ) -> Tensor:
        """:meth:`attend` over a :class:`CompactWindows` group: real tokens and a padding slot.

        Parameters
        ----------
        q:
            [N, heads, nWg·Lq, d] queries of ``compact.query_tokens``.
        kv:
            [N, 2·heads, nWg·Lk, d] keys then values of ``compact.key_tokens``.
        mask:
            [nW, w², w²] additive shift mask of the full windows, or ``None``.

        Returns
        -------
        Tensor
            [N, heads, nWg·Lq, d].
        """
        n, heads, queries, d = q.shape
        nw = compact.num_windows
        q = q.view(n, heads, nw, queries // nw, d)
        k, v = kv.view(n, 2 * heads, nw, -1, d).chunk(2, dim=1)

        def bias() -> Tensor:  # [heads, nWg, Lq, Lk]
            full = self.relative_position_bias()[:, None]
            return compact_bias(full if mask is None else full + mask[None], compact)

        sources = [self.relative_position_bias_table, self.relative_position_index]
        sources += [compact.windows, compact.positions] + ([] if mask is None else [mask])
        out = window_sdpa(q, k, v, bias, heads_first=True, cache=self.mask_cache, sources=sources)
        return out.view(n, heads, queries, d)

    def forward(self, windows: Tensor, mask: Tensor | None = None) -> Tensor:
        """Attend within each window: [N, nW, w², C] tokens (mask as in :meth:`attend`) →
        [N, nW, w², C]."""
        n, nw, length, c = windows.shape
        qkv = self.qkv(windows).view(n, nw * length, 3 * self.num_heads, -1).transpose(1, 2)
        out = self.attend(qkv.contiguous(), nw, mask).transpose(1, 2)
        return self.proj(out.reshape(n, nw, length, c))


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
class WindowRoute:
    """Where the real tokens of an H×W grid sit in the windows of its padded (and shifted) grid.

    ``to_windows`` [nW·w²] int64: for each window slot (windows, then slots, row by row), the
    row-major index of the real token it holds, or H·W for a padding token. ``from_windows``
    [H·W] int64: for each real token, its window slot. Gathering by them replaces padding,
    cyclic shift, window partition, merge, shift back and crop with two index selections.
    """

    to_windows: Tensor
    from_windows: Tensor
    num_windows: int


def _window_slots(height: int, width: int, window_size: int, shift: int) -> np.ndarray:
    """[nW, w²]: the row-major index of the real token in each window slot, H·W for padding.

    Computed with numpy, not torch, so that tracing (torch.export) sees constants."""
    pad_h, pad_w = -height % window_size, -width % window_size
    real = height * width
    grid = np.full((height + pad_h, width + pad_w), real, dtype=np.int64)
    grid[:height, :width] = np.arange(real).reshape(height, width)
    if shift:
        grid = np.roll(grid, (-shift, -shift), axis=(0, 1))
    rows, cols = grid.shape[0] // window_size, grid.shape[1] // window_size
    windows = grid.reshape(rows, window_size, cols, window_size).transpose(0, 2, 1, 3)
    return windows.reshape(rows * cols, window_size * window_size)


def window_route(
    height: int, width: int, window_size: int, shift: int, device: torch.device | None = None
) -> WindowRoute:
    """The :class:`WindowRoute` of an unpadded ``height``×``width`` grid: zero-padded on the
    bottom/right to multiples of ``window_size``, rolled by ``-shift`` on both axes (0 = none)."""
    slots = _window_slots(height, width, window_size, shift)
    to_windows = slots.flatten()
    is_real = to_windows < height * width
    from_windows = np.empty(height * width, dtype=np.int64)
    from_windows[to_windows[is_real]] = np.flatnonzero(is_real)
    return WindowRoute(
        torch.as_tensor(to_windows, device=device),
        torch.as_tensor(from_windows, device=device),
        len(slots),
    )


@dataclass(frozen=True)
class CompactWindows:
    """Some windows of a :class:`WindowRoute`, holding only their real tokens and a padding slot.

    The padding tokens of a window all hold the same key and value (``qkv(0)``), so the softmax
    over them equals one slot whose logit adds the log-sum-exp of their biases (position bias and
    shift mask) over them: the same attention over Lq + 1 keys instead of w², and only the real
    tokens as queries (the padding rows' outputs are discarded anyway). The windows hold
    different numbers of real tokens: each is filled up to Lq (the largest) with slots that are
    masked out as keys and whose outputs are never read.

    ``positions`` [nWg, Lq] int64: the window
    slot (0 … w² − 1) of each compact slot, the real ones first in slot order (a filler points at
    a padding slot). ``valid`` [nWg, Lq] bool: the compact slots holding a real token.
    ``padding`` [nWg, w²] bool: the padding slots. ``query_tokens`` [nWg·Lq] and ``key_tokens``
    [nWg·Lk] int64: the token (row-major index, H·W for the padding token) of each query and key
    slot; Lk = Lq + 1, the last key of a window being its padding slot, where a window has
    padding (else Lk = Lq). ``windows`` [nWg] int64: the route's windows held.
    """

    positions: Tensor
    valid: Tensor
    padding: Tensor
    query_tokens: Tensor
    key_tokens: Tensor
    windows: Tensor | None = None

    @property
    def num_windows(self) -> int:
        return self.positions.shape[0]

    @property
    def has_padding(self) -> bool:
        return self.key_tokens.numel() > self.query_tokens.numel()


@dataclass(frozen=True)
class CompactLayout:
    """A route's windows in one or two :class:`CompactWindows` groups (windows of about as many
    real tokens together); ``from_windows`` [H·W] int64: each real token's query slot in the
    groups' slots laid end to end."""

    groups: tuple[CompactWindows, ...]
    from_windows: Tensor


def _compact_group(
    slots: np.ndarray, real: int, device: torch.device | None
) -> tuple[CompactWindows, np.ndarray]:
    """The group of the windows whose slots ([nWg, w²], :func:`_window_slots`) are given, and
    its query tokens [nWg·Lq] as an array."""
    padding = slots >= real
    counts = (~padding).sum(axis=1)
    length = int(counts.max())
    # A stable sort of "is padding" puts each window's real slots first, in slot order.
    positions = np.argsort(padding, axis=1, kind="stable")[:, :length]
    valid = np.arange(length) < counts[:, None]
    tokens = np.where(valid, np.take_along_axis(slots, positions, axis=1), real)
    keys = tokens
    if padding.any():
        keys = np.concatenate((tokens, np.full((len(slots), 1), real)), axis=1)
    arrays = (positions, valid, padding, tokens.flatten(), keys.flatten())
    return CompactWindows(*(torch.as_tensor(a, device=device) for a in arrays)), arrays[3]


def _cost(counts: list[int], slots: int) -> int:
    """Query × key slots of one group of windows with these real-token counts."""
    length = max(counts)
    return len(counts) * length * (length + (min(counts) < slots or length < slots))


def compact_windows(
    height: int, width: int, window_size: int, shift: int, device: torch.device | None = None
) -> CompactLayout:
    """The :class:`CompactLayout` of the windows of :func:`window_route`: one group, or two
    (the windows sorted by real tokens, cut where that costs the fewest attention products)."""
    slots = _window_slots(height, width, window_size, shift)
    real, full = height * width, slots.shape[1]
    counts = (slots < real).sum(axis=1)
    order = np.argsort(-counts, kind="stable")
    ranked = counts[order].tolist()
    best, cut = _cost(ranked, full), len(order)
    for i in range(1, len(order)):
        if ranked[i] != ranked[i - 1]:  # groups of distinct sizes (distinct mask-cache keys)
            cost = _cost(ranked[:i], full) + _cost(ranked[i:], full)
            if cost < best:
                best, cut = cost, i
    parts = [order[:cut], order[cut:]] if cut < len(order) else [order]
    groups, from_windows, offset = [], np.empty(real, dtype=np.int64), 0
    for part in parts:
        windows = np.sort(part)
        group, tokens = _compact_group(slots[windows], real, device)
        groups.append(replace(group, windows=torch.as_tensor(windows, device=device)))
        is_real = tokens < real
        from_windows[tokens[is_real]] = offset + np.flatnonzero(is_real)
        offset += tokens.size
    return CompactLayout(tuple(groups), torch.as_tensor(from_windows, device=device))


def compact_bias(full: Tensor, group: CompactWindows) -> Tensor:
    """The additive attention bias of a :class:`CompactWindows` group.

    Parameters
    ----------
    full:
        [heads, nW or 1, w², w²] bias of the route's full windows (position bias + shift mask).

    Returns
    -------
    Tensor
        [heads, nWg, Lq, Lk]: the full bias between real slots, −1e9 for fillers' keys, and (with
        padding) in the last column the log-sum-exp of each query's bias over its window's padding
        slots.
    """
    if full.shape[1] > 1:
        full = full.index_select(1, group.windows)
    heads, _, slots, _ = full.shape
    nw, length = group.positions.shape
    full = full.expand(heads, nw, slots, slots)
    rows = full.gather(2, group.positions[None, :, :, None].expand(heads, nw, length, slots))
    columns = group.positions[None, :, None, :].expand(heads, nw, length, length)
    real = rows.gather(3, columns).masked_fill(~group.valid[None, :, None, :], _NO_KEY)
    if not group.has_padding:
        return real
    padding = rows.masked_fill(~group.padding[None, :, None, :], _NO_KEY)
    return torch.cat((real, padding.logsumexp(dim=-1, keepdim=True)), dim=-1)


def _compact_if_cheaper(
    height: int, width: int, window_size: int, shift: int, device: torch.device
) -> CompactLayout | None:
    layout = compact_windows(height, width, window_size, shift, device)
    groups = layout.groups
    cost = sum(g.query_tokens.numel() * g.key_tokens.numel() // g.num_windows for g in groups)
    windows = _window_slots(height, width, window_size, shift).shape
    return layout if cost <= _COMPACT_AT_MOST * windows[0] * windows[1] ** 2 else None


@dataclass(frozen=True)
class _WindowLayout:
    """Per-grid-size constants shared by the blocks of a stage."""

    padded: bool
    plain: WindowRoute
    shifted: WindowRoute | None
    shift_mask: Tensor | None
    compact_plain: CompactLayout | None = None
    compact_shifted: CompactLayout | None = None


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
        """[N, H, W, C] → [N, H, W, C].

        The official block zero-pads the grid after ``norm1`` and runs ``qkv`` and ``proj`` on
        every padded token. Both are per-token maps and a padded token's qkv is ``qkv(0)`` (the
        bias), so they run on the real tokens only and padding tokens enter the windows as that
        one value: the same function, without the padded work (3–6× the real tokens in the late
        stages of small inputs).
        """
        n, h, w, c = x.shape
        heads = self.attn.num_heads
        route = layout.shifted if self.shift else layout.plain
        qkv = self.attn.qkv(self.norm1(x)).flatten(1, 2)  # [N, H·W, 3C]
        if layout.padded:
            padding = self.attn.qkv(qkv.new_zeros(1, 1, c)).expand(n, 1, 3 * c)
            qkv = torch.cat((qkv, padding), dim=1)
        # One gather puts the tokens into their windows and the heads first.
        qkv = qkv.view(n, -1, 3 * heads, c // heads).transpose(1, 2)
        mask = layout.shift_mask if self.shift else None
        compact = layout.compact_shifted if self.shift else layout.compact_plain
        if compact is None:
            windows = qkv.index_select(2, route.to_windows)  # [N, 3·heads, nW·w², d]
            out = self.attn.attend(windows, route.num_windows, mask).transpose(1, 2)
            back = route.from_windows
        else:
            outs = [
                self.attn.attend_compact(
                    qkv[:, :heads].index_select(2, group.query_tokens),
                    qkv[:, heads:].index_select(2, group.key_tokens),
                    group,
                    mask,
                )
                for group in compact.groups
            ]
            out = (outs[0] if len(outs) == 1 else torch.cat(outs, dim=2)).transpose(1, 2)
            back = compact.from_windows
        out = out.index_select(1, back).view(n, h, w, c)  # and one takes them back
        x = x + self.drop_path(self.attn.proj(out))
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
        self._compact = True

    @property
    def compact(self) -> bool:
        """Attend over :class:`CompactLayout` windows where they cost fewer products (default);
        ``False`` = the padded windows of the official code (the same function)."""
        return self._compact

    @compact.setter
    def compact(self, value: bool) -> None:
        self._compact = bool(value)
        self._layouts = {}

    def _layout(self, height: int, width: int, device: torch.device) -> _WindowLayout:
        key = (height, width, device)
        layout = self._layouts.get(key)
        if layout is None:
            # Outside inference mode: tensors made under it (a first call from the predictor)
            # cannot enter a later training step's autograd graph.
            with torch.inference_mode(False):
                layout = self._layouts[key] = self._build_layout(height, width, device)
        return layout

    def _build_layout(self, height: int, width: int, device: torch.device) -> _WindowLayout:
        pad_h, pad_w = -height % self.window_size, -width % self.window_size
        plain = window_route(height, width, self.window_size, 0, device)
        shifted = mask = None
        if any(block.shift for block in self.blocks):
            padded_h, padded_w = height + pad_h, width + pad_w
            mask = shift_window_mask(padded_h, padded_w, self.window_size, self.shift, device)
            shifted = window_route(height, width, self.window_size, self.shift, device)
        compact_plain = compact_shifted = None
        if self.compact:
            compact_plain = _compact_if_cheaper(height, width, self.window_size, 0, device)
            if shifted is not None:
                compact_shifted = _compact_if_cheaper(
                    height, width, self.window_size, self.shift, device
                )
        return _WindowLayout(
            bool(pad_h or pad_w), plain, shifted, mask, compact_plain, compact_shifted
        )

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """[N, H, W, C] → (stage output [N, H, W, C], next-stage input [N, ⌈H/2⌉, ⌈W/2⌉, 2C])."""
        layout = self._layout(x.shape[1], x.shape[2], x.device)
        for block in self.blocks:
            x = block(x, layout)
        return x, (self.downsample(x) if self.downsample is not None else x)


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
