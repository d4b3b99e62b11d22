"""Migration aid: the official model's outputs, keyed exactly like the official output dict."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import ArrayLike

from kpr.modeling.backbones.solider_swin import SwinBlock
from kpr.modeling.backbones.timm_swin import is_v2_attention
from kpr.modeling.kpr import KPR
from kpr.modeling.outputs import Branches
from kpr.modeling.part_head import part_visibility
from kpr.retrieval.distance import body_part_distance, l2_normalize, part_distance

_BRANCH_KEYS = (
    ("globl", "global_"),
    ("backg", "background"),
    ("foreg", "foreground"),
    ("conct", "concat"),
    ("parts", "parts"),
)


def _branch_items(prefix: str, branches: Branches) -> dict[str, torch.Tensor]:
    return {f"{prefix}{official}": getattr(branches, ours) for official, ours in _BRANCH_KEYS}


def official_forward(
    model: KPR,
    images: ArrayLike,
    prompt_masks: ArrayLike | None = None,
    cam_labels: ArrayLike | None = None,
) -> dict[str, np.ndarray]:
    """Run ``model`` like the official engine's evaluation pass and return numpy arrays.

    Keys: ``embeddings.*``, ``embeddings.bn_*``, ``visibility.*``, ``id_cls_scores.*`` (when the
    model has classifiers), ``masks.*``, ``pixels_cls_scores``, ``spatial_features``,
    ``test.embeddings_raw``, ``test.embeddings``, ``test.visibility``, ``test.masks``,
    ``test.distmat`` and ``test.body_part_distmat``.
    """
    device = next(model.parameters()).device
    images_t = torch.as_tensor(np.asarray(images), dtype=torch.float32, device=device)
    prompts_t = (
        None if prompt_masks is None else torch.as_tensor(np.asarray(prompt_masks), device=device)
    )
    cams_t = None if cam_labels is None else torch.as_tensor(np.asarray(cam_labels), device=device)
    model.eval()
    with torch.inference_mode():
        out = model(images_t, prompts_t, cams_t, full=True)
        assert out.branch_embeddings is not None and out.bn_embeddings is not None
        present = part_visibility(out.part_masks, model.config.binary_visibility)
        foreground_mask = out.part_masks[:, 1:].amax(dim=1)
        result: dict[str, torch.Tensor] = {
            **_branch_items("embeddings.", out.branch_embeddings),
            **{
                k.replace("embeddings.", "embeddings.bn_"): v
                for k, v in _branch_items("embeddings.", out.bn_embeddings).items()
            },
            "visibility.globl": torch.ones_like(present[:, 0]),
            "visibility.backg": present[:, 0],
            "visibility.foreg": out.visibility[:, 0],
            "visibility.conct": out.visibility[:, 0],
            "visibility.parts": out.visibility[:, 1:],
            "pixels_cls_scores": out.pixel_logits,
            "spatial_features": out.features,
            "masks.globl": torch.ones_like(foreground_mask),
            "masks.backg": out.part_masks[:, 0],
            "masks.foreg": foreground_mask,
            "masks.conct": foreground_mask,
            "masks.parts": out.part_masks[:, 1:],
            "test.embeddings_raw": out.embeddings,
            "test.embeddings": (emb := l2_normalize(out.embeddings)),
            "test.visibility": out.visibility,
            "test.masks": torch.cat([foreground_mask.unsqueeze(1), out.part_masks[:, 1:]], dim=1),
            "test.distmat": part_distance(emb, emb, out.visibility, out.visibility),
            "test.body_part_distmat": body_part_distance(emb, emb, out.visibility, out.visibility),
        }
        if out.id_logits is not None:
            result.update(_branch_items("id_cls_scores.", out.id_logits))
    return {k: v.detach().cpu().numpy() for k, v in result.items()}


def official_window_attention(
    attn: torch.nn.Module, windows: torch.Tensor, mask: torch.Tensor | None
) -> torch.Tensor:
    """The official attention, explicit: softmax(q·kᵀ·d^-½ + bias [+ mask])·v, then proj."""
    n, nw, length, c = windows.shape
    heads = attn.num_heads
    qkv = attn.qkv(windows).view(n, nw, length, 3, heads, c // heads).permute(3, 0, 1, 4, 2, 5)
    q, k, v = qkv.unbind(0)
    logits = (q * (c // heads) ** -0.5) @ k.transpose(-2, -1) + attn.relative_position_bias()
    if mask is not None:
        logits = logits + mask[:, None]
    return attn.proj((logits.softmax(-1) @ v).transpose(2, 3).reshape(n, nw, length, c))


def official_swin_block(block: SwinBlock, x: torch.Tensor, layout: object) -> torch.Tensor:
    """A SOLIDER Swin block computed the official way: the grid zero-padded after ``norm1``,
    rolled, partitioned, ``qkv`` + explicit attention + ``proj`` on every padded token, merged,
    rolled back, cropped. kpr's :class:`SwinBlock` computes the same function on the real tokens
    only.

    x [N, H, W, C] → [N, H, W, C]; ``layout`` is the stage's window layout (its shift mask).
    """
    n, h, w, c = x.shape
    ws, shift = block.window_size, block.shift
    pad_h, pad_w = -h % ws, -w % ws
    y = F.pad(block.norm1(x), (0, 0, 0, pad_w, 0, pad_h))
    hp, wp = h + pad_h, w + pad_w
    if shift:
        y = torch.roll(y, (-shift, -shift), dims=(1, 2))
    windows = y.view(n, hp // ws, ws, wp // ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    out = official_window_attention(
        block.attn, windows.reshape(n, -1, ws * ws, c), layout.shift_mask if shift else None
    )
    y = out.view(n, hp // ws, wp // ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(n, hp, wp, c)
    if shift:
        y = torch.roll(y, (shift, shift), dims=(1, 2))
    x = x + block.drop_path(y[:, :h, :w])
    return x + block.drop_path(block.mlp(block.norm2(x)))


@contextlib.contextmanager
def official_window_blocks(model: torch.nn.Module) -> Iterator[None]:
    """Within the block, ``model``'s window attention is computed the way the official code
    computes it: every SOLIDER Swin block runs :func:`official_swin_block`, and timm SwinV2's
    attention its own explicit-product forward (for reference timings and equivalence tests)."""
    blocks = [m for m in model.modules() if isinstance(m, SwinBlock)]
    timm_attention = {m: vars(m).pop("forward") for m in model.modules() if is_v2_attention(m)}
    for block in blocks:
        block.forward = functools.partial(official_swin_block, block)
    try:
        yield
    finally:
        for block in blocks:
            del block.forward
        for module, forward in timm_attention.items():
            module.forward = forward
