"""Window attention through SDPA's fused CPU kernel, shared by both backbone families.

``scaled_dot_product_attention`` takes its fused CPU kernel only for 4-D inputs with a 4-D mask;
5-D inputs or a 3-D mask send it to its reference path (explicit products plus a masked-softmax
pass), ×2.5 slower on a [8, 64, 49, 32] attention (docs/performance.md). A mask that needs a
gradient (the learned bias, in training) always takes that path, so training multiplies explicitly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


def _equal(a: Tensor, b: Tensor) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and a.device == b.device and torch.equal(a, b)


class InferenceMaskCache:
    """SDPA's 4-D attention masks of one attention module, kept between calls without autograd.

    Building one (bias gather, SwinV2's bias MLP, adding the shift mask, expanding over the
    windows) is up to ≈ 8 % of a batch-1 forward (SwinV2), the same at every call. A mask is
    reused while the call's shapes, dtype and device are those it was built for and every tensor
    it was built from is equal to its copy taken then — compared by value, so in-place updates,
    reloaded weights and dtype round trips are never missed (the sources are small: a bias table
    or MLP and one shift mask). Up to ``MAX_ENTRIES`` keys are kept at once, so a process that
    alternates float32 with bf16 autocast (``precision="auto"``'s probe, the benchmarks) does not
    rebuild at every switch. With autograd on, or while torch.export / torch.compile traces the
    model, it is neither used nor filled. ``builds`` counts the masks built for it.
    """

    MAX_ENTRIES = 4

    def __init__(self) -> None:
        # key -> (source copies, mask); the dict is replaced as one, never changed in place, so a
        # thread never sees a half-updated entry.
        self._entries: dict[tuple[object, ...], tuple[list[Tensor], Tensor]] = {}
        self.builds = 0

    def get(self, key: tuple[object, ...], sources: Sequence[Tensor], build: Callable[[], Tensor]):
        """The mask for ``key`` built from ``sources``: the kept one, or ``build()`` (kept)."""
        if torch.is_grad_enabled() or torch.compiler.is_compiling():
            return build()  # a traced graph (ONNX export, torch.compile) computes it
        entries = self._entries
        entry = entries.get(key)
        if (
            entry is not None
            and len(entry[0]) == len(sources)
            and all(map(_equal, entry[0], sources))
        ):
            return entry[1]
        self.builds += 1
        mask = build()
        kept = {k: v for k, v in entries.items() if k != key}
        while len(kept) >= self.MAX_ENTRIES:  # the oldest key goes first
            del kept[next(iter(kept))]
        kept[key] = ([s.detach().clone() for s in sources], mask)
        self._entries = kept
        return mask


def window_sdpa(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    bias: Tensor | Callable[[], Tensor],
    mask: Tensor | None = None,
    *,
    heads_first: bool = False,
    scale: float | None = None,
    dropout_p: float = 0.0,
    cache: InferenceMaskCache | None = None,
    sources: Sequence[Tensor] = (),
) -> Tensor:
    """softmax(q·kᵀ·scale + bias [+ mask])·v for every window.

    Parameters
    ----------
    q, k, v:
        [N, nW, heads, L, d], or [N, heads, nW, L, d] with ``heads_first``; the first two window
        dimensions must merge without a copy (each a slice of a contiguous tensor does).
    bias:
        [heads, L, L] relative position bias, the same in every window, or (``heads_first`` and
        no ``mask``) [heads, nW, Lq, Lk], one per window, for windows whose queries and keys
        differ in number; or a function returning either (called only when the mask is built,
        not when ``cache`` has it).
    mask:
        [nW, L, L] additive shift mask, or ``None``.
    scale:
        ``None`` = d ** -0.5.
    cache, sources:
        Without autograd, the SDPA mask is taken from ``cache`` while ``sources`` (the tensors
        ``bias`` is computed from) and ``mask`` are unchanged.

    Returns
    -------
    Tensor
        q's layout, contiguous.
    """
    n, first, second, length, _ = q.shape
    keys = k.shape[3]

    def full_bias() -> Tensor:  # [nW or 1, heads, Lq, Lk], or heads first
        b = bias() if callable(bias) else bias
        if b.ndim == 4:  # already one per window
            return b
        b = b[:, None] if mask is None else b[:, None] + mask.to(b.dtype)[None]
        return b if heads_first else b.transpose(0, 1)

    def sdpa_mask(b: Tensor) -> Tensor:
        b = b.expand(first, second, -1, -1).reshape(1, first * second, length, keys)
        return b.to(q.dtype)

    if torch.is_grad_enabled() or cache is None:
        b = full_bias()
        if b.requires_grad and torch.is_grad_enabled():
            # SDPA takes its reference path for a mask that needs a gradient, with a pass that
            # checks for fully masked rows on top: the explicit products are ×1.05 faster per
            # training step.
            scores = (q * (q.shape[-1] ** -0.5 if scale is None else scale)) @ k.transpose(-1, -2)
            weights = F.dropout((scores + b).softmax(-1), dropout_p)
            return weights @ v
        attn_mask = sdpa_mask(b)
    else:
        key = (first, second, length, keys, heads_first, q.dtype, q.device, mask is None)
        kept = [*sources] if mask is None else [*sources, mask]
        attn_mask = cache.get(key, kept, lambda: sdpa_mask(full_bias()))
    q, k, v = (t.reshape(n, first * second, t.shape[3], -1) for t in (q, k, v))
    out = F.scaled_dot_product_attention(
        q, k, v, attn_mask=attn_mask, dropout_p=dropout_p, scale=scale
    )
    return out.view(n, first, second, length, -1)


__all__ = ["InferenceMaskCache", "window_sdpa"]
