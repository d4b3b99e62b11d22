"""Part-based distances between query and gallery embeddings, computed in bounded memory.

Every sample is described by S embedding slots (slot 0 = foreground, slots 1..K = body parts) and an
optional visibility score per slot. The distance between a query and a gallery sample is a
combination of the S per-slot distances, restricted to the slots that are visible in both:

- binary visibility (bool tensors): mean (or max) over the mutually visible slots;
- continuous visibility (float tensors in [0, 1]): mean weighted by sqrt(v_q * v_g), or max over the
  slots with a positive weight;
- no visibility: plain mean (or max) over all slots.

A pair without any valid slot gets the sentinel ``max(valid per-slot distances) + 1``, where the max
runs over every valid (slot, query, gallery) entry of the whole problem, so the sentinel ranks after
every real distance. The chunked functions compute that max while streaming: invalid pairs are held
as ``+inf`` and replaced once the last chunk has been seen.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from kpr.errors import KPRError

Metric = Literal["euclidean", "cosine"]
Combine = Literal["mean", "max"]
ArrayLike = torch.Tensor | np.ndarray

_METRICS = ("euclidean", "cosine")
_COMBINES = ("mean", "max")
DEFAULT_GALLERY_CHUNK = 1024
DEFAULT_QUERY_CHUNK = 2048
_VALIDATION_ROWS = 4096

__all__ = [
    "body_part_distance",
    "l2_normalize",
    "part_distance",
    "topk_gallery",
]


def l2_normalize(emb: ArrayLike, eps: float = 1e-12) -> torch.Tensor:
    """L2-normalise embeddings along the last dimension.

    Parameters
    ----------
    emb
        Embeddings ``[..., D]``.
    eps
        Lower bound of the norm, so that all-zero vectors stay zero.

    Returns
    -------
    torch.Tensor
        ``[..., D]``, each vector divided by ``max(||v||, eps)``.
    """
    return F.normalize(torch.as_tensor(emb), p=2.0, dim=-1, eps=eps)


@dataclass(frozen=True)
class _Problem:
    """Validated inputs; embeddings keep their ``[N, S, D]`` layout (blocks are made slot-first)."""

    q: torch.Tensor  # [Nq, S, D]
    g: torch.Tensor  # [Ng, S, D]
    q_w: torch.Tensor | None  # [S, Nq] per-slot weight factor, None without visibility
    g_w: torch.Tensor | None  # [S, Ng]
    q_pen: torch.Tensor | None  # [S, Nq] 0 where the slot can be valid, -inf where it cannot
    g_pen: torch.Tensor | None  # [S, Ng]
    binary: bool
    metric: str
    combine: str
    normalize: bool

    @property
    def num_query(self) -> int:
        return self.q.shape[0]

    @property
    def num_gallery(self) -> int:
        return self.g.shape[0]

    @property
    def has_visibility(self) -> bool:
        return self.q_w is not None


def _check_choice(value: str, allowed: tuple[str, ...], name: str) -> None:
    if value not in allowed:
        raise KPRError(f"{name} must be one of {allowed}, got {value!r}")


def _check_chunk(value: int, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise KPRError(f"{name} must be a positive integer, got {value!r}")


def _chunks(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def _as_embeddings(emb: ArrayLike, name: str) -> torch.Tensor:
    emb = torch.as_tensor(emb)
    if emb.ndim != 3:
        raise KPRError(f"{name} must have shape [N, S, D], got shape {tuple(emb.shape)}")
    if not emb.is_floating_point():
        emb = emb.float()
    for rows in _chunks(emb.shape[0], _VALIDATION_ROWS):
        if not bool(torch.isfinite(emb[rows]).all()):
            raise KPRError(f"{name} contains NaN or infinite values")
    return emb


def _as_visibility(vis: ArrayLike, shape: tuple[int, int], name: str) -> torch.Tensor:
    vis = torch.as_tensor(vis)
    if tuple(vis.shape) != shape:
        raise KPRError(f"{name} must have shape [N, S] = {list(shape)}, got {list(vis.shape)}")
    if vis.dtype != torch.bool:
        if not vis.is_floating_point():
            vis = vis.float()
        if not bool(torch.isfinite(vis).all()) or bool((vis < 0).any()):
            raise KPRError(f"{name} must hold finite non-negative scores")
    return vis


def _visibility_factors(
    vis: torch.Tensor, binary: bool, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """Slot-first weight factor and -inf penalty of invalid slots, both ``[S, N]``."""
    vis_t = vis.t().to(dtype)
    # sqrt(v_q * v_g) = sqrt(v_q) * sqrt(v_g): the pair weight factorises into one matmul.
    weight = vis_t if binary else vis_t.sqrt()
    penalty = torch.zeros_like(weight).masked_fill_(weight <= 0, float("-inf"))
    return weight.contiguous(), penalty.contiguous()


def _prepare(
    q_emb: ArrayLike,
    g_emb: ArrayLike,
    q_vis: ArrayLike | None,
    g_vis: ArrayLike | None,
    metric: str,
    combine: str,
    normalize: bool,
) -> _Problem:
    _check_choice(metric, _METRICS, "metric")
    _check_choice(combine, _COMBINES, "combine")
    q = _as_embeddings(q_emb, "q_emb")
    g = _as_embeddings(g_emb, "g_emb")
    if q.shape[1:] != g.shape[1:]:
        raise KPRError(
            "q_emb and g_emb must share the slot count S and dimension D, got "
            f"[Nq, S, D] = {list(q.shape)} and [Ng, S, D] = {list(g.shape)}"
        )
    if q.device != g.device:
        raise KPRError(f"q_emb is on {q.device} but g_emb is on {g.device}")
    if (q_vis is None) != (g_vis is None):
        raise KPRError("pass both q_vis and g_vis, or neither")
    dtype = torch.promote_types(q.dtype, g.dtype)
    q, g = q.to(dtype), g.to(dtype)
    q_w = g_w = q_pen = g_pen = None
    binary = False
    if q_vis is not None and g_vis is not None:
        qv = _as_visibility(q_vis, (q.shape[0], q.shape[1]), "q_vis").to(q.device)
        gv = _as_visibility(g_vis, (g.shape[0], g.shape[1]), "g_vis").to(q.device)
        binary = qv.dtype == torch.bool and gv.dtype == torch.bool
        q_w, q_pen = _visibility_factors(qv, binary, dtype)
        g_w, g_pen = _visibility_factors(gv, binary, dtype)
    return _Problem(q, g, q_w, g_w, q_pen, g_pen, binary, metric, combine, normalize)


@dataclass(frozen=True)
class _Block:
    """A chunk of samples, slot-first and contiguous for batched matrix products."""

    rows: slice
    emb: torch.Tensor  # [S, n, D]
    sq_norm: torch.Tensor | None  # [S, n], euclidean only


def _block(p: _Problem, emb: torch.Tensor, rows: slice) -> _Block:
    chunk = emb[rows]
    if p.normalize:
        chunk = l2_normalize(chunk)
    slot_first = chunk.transpose(0, 1).contiguous()
    sq_norm = slot_first.pow(2).sum(-1) if p.metric == "euclidean" else None
    return _Block(rows, slot_first, sq_norm)


def _slot_distances(p: _Problem, qb: _Block, gb: _Block) -> torch.Tensor:
    """Per-slot distances ``[S, q, g]`` of a block pair, in a fresh buffer the caller may modify."""
    if p.metric == "cosine":
        return torch.bmm(qb.emb, gb.emb.mT).neg_().add_(1.0)
    assert qb.sq_norm is not None and gb.sq_norm is not None
    sq = qb.sq_norm[:, :, None] + gb.sq_norm[:, None, :]
    return sq.baddbmm_(qb.emb, gb.emb.mT, alpha=-2.0).clamp_min_(0.0).sqrt_()


def _combined_block(
    p: _Problem, qb: _Block, gb: _Block
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Combined distances of one block and the max of its valid per-slot entries.

    Returns
    -------
    dist
        ``[q, g]``; ``+inf`` for pairs without a valid slot.
    valid_max
        0-d tensor, ``-inf`` if the block has no valid entry; None without visibility (every
        entry is valid and no sentinel is ever needed).
    """
    d = _slot_distances(p, qb, gb)
    qs, gs = qb.rows, gb.rows
    if not p.has_visibility:
        return (d.amax(0) if p.combine == "max" else d.mean(0)), None
    assert p.q_w is not None and p.g_w is not None
    assert p.q_pen is not None and p.g_pen is not None
    d.add_(p.q_pen[:, qs, None]).add_(p.g_pen[:, None, gs])
    valid_max = d.amax()
    if p.combine == "max":
        dist = d.amax(0)
        return dist.masked_fill_(torch.isneginf(dist), float("inf")), valid_max
    d.nan_to_num_(nan=0.0, neginf=0.0)
    if not p.binary:
        d.mul_(p.q_w[:, qs, None]).mul_(p.g_w[:, None, gs])
    total_weight = p.q_w[:, qs].t() @ p.g_w[:, gs]
    dist = d.sum(0).div_(total_weight)
    return dist.masked_fill_(total_weight <= 0, float("inf")), valid_max


def _sentinel(valid_max: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    """``max + 1``; an empty max (no valid entry anywhere) counts as 0."""
    if valid_max is None or bool(torch.isneginf(valid_max)):
        return torch.ones((), dtype=like.dtype, device=like.device)
    return valid_max + 1


def _running_max(acc: torch.Tensor | None, new: torch.Tensor | None) -> torch.Tensor | None:
    if new is None:
        return acc
    return new if acc is None else torch.maximum(acc, new)


def part_distance(
    q_emb: ArrayLike,
    g_emb: ArrayLike,
    q_vis: ArrayLike | None = None,
    g_vis: ArrayLike | None = None,
    *,
    metric: Metric = "euclidean",
    combine: Combine = "mean",
    normalize: bool = False,
    chunk_size: int = DEFAULT_GALLERY_CHUNK,
    query_chunk_size: int = DEFAULT_QUERY_CHUNK,
) -> torch.Tensor:
    """Part-based query-gallery distance matrix (the official KPR test distance).

    Per slot, the distance is the Euclidean norm ``||q_s - g_s||`` (``sqrt(relu(|q|^2 - 2 q.g +
    |g|^2))``) or ``1 - q_s . g_s`` (cosine). The slots are combined as described in the module
    docstring. With the defaults and L2-normalised embeddings this reproduces the official engine.

    Parameters
    ----------
    q_emb, g_emb
        Embeddings ``[Nq, S, D]`` and ``[Ng, S, D]``.
    q_vis, g_vis
        Visibility ``[Nq, S]`` and ``[Ng, S]``: both bool (binary), otherwise continuous scores
        ``>= 0`` (a bool tensor is then read as 0/1). Both None: every slot is used.
    metric
        ``"euclidean"`` or ``"cosine"``.
    combine
        ``"mean"`` (weighted mean over valid slots) or ``"max"`` (max over valid slots).
    normalize
        L2-normalise every slot first (the engine's ``normalize_feature``). The official engine
        normalises before calling the distance, so pass already-normalised features or True.
    chunk_size, query_chunk_size
        Gallery and query block sizes. Besides the output, memory stays within a small multiple
        of ``S * chunk_size * query_chunk_size`` elements.

    Returns
    -------
    torch.Tensor
        ``[Nq, Ng]`` distances on the embeddings' device. Pairs with no valid slot hold
        ``max(valid per-slot distances) + 1``.
    """
    _check_chunk(chunk_size, "chunk_size")
    _check_chunk(query_chunk_size, "query_chunk_size")
    p = _prepare(q_emb, g_emb, q_vis, g_vis, metric, combine, normalize)
    out = p.q.new_empty((p.num_query, p.num_gallery))
    valid_max: torch.Tensor | None = None
    for qs in _chunks(p.num_query, query_chunk_size):
        qb = _block(p, p.q, qs)
        for gs in _chunks(p.num_gallery, chunk_size):
            dist, block_max = _combined_block(p, qb, _block(p, p.g, gs))
            out[qs, gs] = dist
            valid_max = _running_max(valid_max, block_max)
    if p.has_visibility:
        # Second pass over the output only: the sentinel depends on every block.
        sentinel = _sentinel(valid_max, out)
        for qs in _chunks(p.num_query, query_chunk_size):
            rows = out[qs]
            rows.masked_fill_(torch.isposinf(rows), sentinel)
    return out


def body_part_distance(
    q_emb: ArrayLike,
    g_emb: ArrayLike,
    q_vis: ArrayLike | None = None,
    g_vis: ArrayLike | None = None,
    *,
    metric: Metric = "euclidean",
    normalize: bool = False,
) -> torch.Tensor:
    """Per-slot distance matrices, as the official evaluator returns them.

    Meant for small problems (visualisation, equivalence checks): the whole ``[S, Nq, Ng]`` result
    is materialised.

    Parameters
    ----------
    q_emb, g_emb
        Embeddings ``[Nq, S, D]`` and ``[Ng, S, D]``.
    q_vis, g_vis
        Visibility as in :func:`part_distance`, or None.
    metric
        ``"euclidean"`` or ``"cosine"``.
    normalize
        L2-normalise every slot first.

    Returns
    -------
    torch.Tensor
        ``[S, Nq, Ng]``. With binary visibility, entries whose slot is not visible in both samples
        hold ``max(valid entries) + 1`` (the same sentinel as :func:`part_distance`). With
        continuous or no visibility nothing is replaced, as in the official code.
    """
    p = _prepare(q_emb, g_emb, q_vis, g_vis, metric, "mean", normalize)
    d = _slot_distances(
        p, _block(p, p.q, slice(0, p.num_query)), _block(p, p.g, slice(0, p.num_gallery))
    )
    if not p.binary:
        return d
    assert p.q_pen is not None and p.g_pen is not None
    invalid = torch.isneginf(p.q_pen[:, :, None] + p.g_pen[:, None, :])
    valid_max = d.masked_fill(invalid, float("-inf")).amax() if d.numel() else None
    return d.masked_fill_(invalid, _sentinel(valid_max, d))


def _merge_topk(
    best_d: torch.Tensor | None,
    best_i: torch.Tensor | None,
    new_d: torch.Tensor,
    new_i: torch.Tensor,
    k: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep the k smallest of two candidate sets, ordered by (distance, gallery index).

    ``best_*`` is sorted by (distance, index) and holds lower gallery indices than ``new_*``, so a
    stable sort of the index-ordered concatenation breaks ties by index.
    """
    new_i, order = new_i.sort(dim=1)
    new_d = new_d.gather(1, order)
    if best_d is not None and best_i is not None:
        new_d = torch.cat([best_d, new_d], dim=1)
        new_i = torch.cat([best_i, new_i], dim=1)
    new_d, order = new_d.sort(dim=1, stable=True)
    return new_d[:, :k], new_i.gather(1, order[:, :k])


def topk_gallery(
    q_emb: ArrayLike,
    g_emb: ArrayLike,
    q_vis: ArrayLike | None,
    g_vis: ArrayLike | None,
    k: int,
    *,
    metric: Metric = "euclidean",
    combine: Combine = "mean",
    normalize: bool = False,
    chunk_size: int = DEFAULT_GALLERY_CHUNK,
    query_chunk_size: int = DEFAULT_QUERY_CHUNK,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The k nearest gallery samples of every query, without the full ``[Nq, Ng]`` matrix.

    The gallery is streamed in chunks; each chunk's k best candidates are merged into a running
    top-k. Pairs without a valid slot rank last and carry the same sentinel as in
    :func:`part_distance`.

    Parameters
    ----------
    q_emb, g_emb, q_vis, g_vis, metric, combine, normalize, chunk_size, query_chunk_size
        As in :func:`part_distance`.
    k
        Number of neighbours, ``1 <= k <= Ng``.

    Returns
    -------
    distances
        ``[Nq, k]``, ascending along each row.
    indices
        ``[Nq, k]`` int64 gallery indices. Equal distances are ordered by index; when several
        gallery items tie with the k-th distance, which of them are kept is unspecified.
    """
    _check_chunk(chunk_size, "chunk_size")
    _check_chunk(query_chunk_size, "query_chunk_size")
    p = _prepare(q_emb, g_emb, q_vis, g_vis, metric, combine, normalize)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= p.num_gallery:
        raise KPRError(f"k must be an integer in [1, Ng={p.num_gallery}], got {k!r}")
    dists, indices = [], []
    valid_max: torch.Tensor | None = None
    for qs in _chunks(p.num_query, query_chunk_size):
        qb = _block(p, p.q, qs)
        best_d: torch.Tensor | None = None
        best_i: torch.Tensor | None = None
        for gs in _chunks(p.num_gallery, chunk_size):
            dist, block_max = _combined_block(p, qb, _block(p, p.g, gs))
            valid_max = _running_max(valid_max, block_max)
            cand_d, cand_i = dist.topk(min(k, dist.shape[1]), dim=1, largest=False, sorted=False)
            best_d, best_i = _merge_topk(best_d, best_i, cand_d, cand_i + gs.start, k)
        assert best_d is not None and best_i is not None
        dists.append(best_d)
        indices.append(best_i)
    if not dists:
        return p.q.new_empty((0, k)), torch.empty((0, k), dtype=torch.long, device=p.q.device)
    out_d, out_i = torch.cat(dists), torch.cat(indices)
    if p.has_visibility:
        out_d.masked_fill_(torch.isposinf(out_d), _sentinel(valid_max, out_d))
    return out_d, out_i
