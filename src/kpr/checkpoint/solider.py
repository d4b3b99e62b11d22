"""SOLIDER-Swin state dicts in other layouts → keys of kpr's ``SoliderSwin`` backbone.

Three layouts hold SOLIDER-Swin weights: the official KPR code's (mmcv naming, relative to
``backbone_appearance_feature_extractor.model.``), SOLIDER's pretrained ``swin_base_reid.pth``
(the same naming under ``backbone.``) and Microsoft's Swin release (``layers.*``, patch merging in
block-concatenation order). Each converter only renames (and, for Microsoft, reorders) tensors; it
never changes a value.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from torch import Tensor

from kpr.checkpoint.weight_files import strip_module, unwrap_state_dict
from kpr.errors import CheckpointError

__all__ = [
    "CONVERTERS",
    "convert_microsoft_swin_state_dict",
    "convert_official_state_dict",
    "convert_solider_pretrained_state_dict",
    "detect_format",
]

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
        The same tensors (not copied) under :class:`SoliderSwin`'s names.

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
        Tensors under :class:`SoliderSwin`'s names. Relative position tables and index buffers
        are kept at their stored size; :func:`kpr.checkpoint.load_pretrained_backbone` adapts
        them to the model's window.

    Raises
    ------
    CheckpointError
        Naming the unknown keys (``strict`` only).
    """
    state = strip_module(unwrap_state_dict(sd))
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
    state = strip_module(unwrap_state_dict(checkpoint))
    backbone = {
        k.removeprefix("backbone."): v for k, v in state.items() if k.startswith("backbone.")
    }
    if not backbone:
        raise CheckpointError("no 'backbone.*' key: not a SOLIDER pretrained checkpoint")
    return convert_official_state_dict(strip_module(backbone), strict=strict)


# File layout → converter to SoliderSwin keys (``native``: already SoliderSwin's own names).
CONVERTERS: dict[str, Callable[..., dict[str, Tensor]]] = {
    "native": lambda sd, strict=True: dict(sd),
    "official": convert_official_state_dict,
    "solider": convert_solider_pretrained_state_dict,
    "microsoft": convert_microsoft_swin_state_dict,
}


def detect_format(state: Mapping[str, Tensor], own_keys: Iterable[str], path: str | Path) -> str:
    """Which of :data:`CONVERTERS` fits ``state``, from key names (``own_keys``: the model's)."""
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
