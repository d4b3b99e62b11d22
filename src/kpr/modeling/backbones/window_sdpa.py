"""Window attention through SDPA's fused CPU kernel, shared by both backbone families.

``scaled_dot_product_attention`` takes its fused CPU kernel only for 4-D inputs with a 4-D mask;
5-D inputs or a 3-D mask send it to its reference path (explicit products plus a masked-softmax
pass), ×2.5 slower on a [8, 64, 49, 32] attention (docs/performance.md). A mask that needs a
gradient (the learned bias, in training) always takes that path, so training multiplies explicitly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def window_sdpa(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    bias: Tensor,
    mask: Tensor | None = None,
    *,
    heads_first: bool = False,
    scale: float | None = None,
    dropout_p: float = 0.0,
) -> Tensor:
    """softmax(q·kᵀ·scale + bias [+ mask])·v for every window.

    Parameters
    ----------
    q, k, v:
        [N, nW, heads, L, d], or [N, heads, nW, L, d] with ``heads_first``; the first two window
        dimensions must merge without a copy (each a slice of a contiguous tensor does).
    bias:
        [heads, L, L] relative position bias, the same in every window.
    mask:
        [nW, L, L] additive shift mask, or ``None``.
    scale:
        ``None`` = d ** -0.5.

    Returns
    -------
    Tensor
        q's layout, contiguous.
    """
    n, first, second, length, _ = q.shape
    bias = bias[:, None] if mask is None else bias[:, None] + mask.to(bias.dtype)[None]
    if not heads_first:
        bias = bias.transpose(0, 1)  # [nW or 1, heads, L, L]
    if bias.requires_grad and torch.is_grad_enabled():
        # SDPA takes its reference path for a mask that needs a gradient, with a pass that checks
        # for fully masked rows on top: the explicit products are ×1.05 faster per training step.
        scores = (q * (q.shape[-1] ** -0.5 if scale is None else scale)) @ k.transpose(-1, -2)
        weights = F.dropout((scores + bias).softmax(-1), dropout_p)
        return weights @ v
    bias = bias.expand(first, second, -1, -1).reshape(1, first * second, length, length)
    q, k, v = (t.reshape(n, first * second, length, -1) for t in (q, k, v))
    out = F.scaled_dot_product_attention(
        q, k, v, attn_mask=bias.to(q.dtype), dropout_p=dropout_p, scale=scale
    )
    return out.view(n, first, second, length, -1)


__all__ = ["window_sdpa"]
