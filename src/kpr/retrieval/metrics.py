"""Re-identification retrieval metrics: CMC, mAP, mINP, per-occlusion-decile scores and SSMD.

The CMC and AP arithmetic mirrors the official evaluator operation by operation (same dtypes, same
summation), so its numbers are reproduced bit for bit when the ranking has no ties.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
import torch

from kpr.errors import KPRError

Protocol = Literal["market", "no_filter"]
ArrayLike = np.ndarray | torch.Tensor

_PROTOCOLS = ("market", "no_filter")
JUNK_PID = -1
# Rows of the distance matrix ranked at once: bounds the argsort/gather temporaries.
_RANK_BLOCK_ELEMENTS = 1 << 22

__all__ = [
    "DecileResult",
    "RankResult",
    "SSMDResult",
    "evaluate_rank",
    "results_by_decile",
    "ssmd",
]


@dataclass(frozen=True, eq=False)
class RankResult:
    """Retrieval scores over the valid queries (those with a true match left after filtering).

    Attributes
    ----------
    cmc
        ``[R]`` float32, mean cumulative match characteristic; ``cmc[0]`` is rank-1.
        ``R = min(max_rank, Ng)``.
    mAP
        Mean average precision.
    mINP
        Mean inverse negative penalty (Ye et al., 2021).
    all_ap
        ``[n_valid]`` float64, AP of every valid query in query order.
    all_cmc
        ``[n_valid, R]`` float32, per-query CMC (0 before the first true match, 1 from it on).
    all_inp
        ``[n_valid]`` float64, INP of every valid query.
    valid_query_mask
        ``[Nq]`` bool, True for the queries included in the averages.
    num_queries_without_match
        Number of skipped queries, ``Nq - n_valid``.
    """

    cmc: np.ndarray
    mAP: float
    mINP: float
    all_ap: np.ndarray
    all_cmc: np.ndarray
    all_inp: np.ndarray
    valid_query_mask: np.ndarray
    num_queries_without_match: int

    @property
    def rank1(self) -> float:
        """Rank-1 accuracy, ``cmc[0]``."""
        return float(self.cmc[0])


@dataclass(frozen=True)
class DecileResult:
    """Scores of one occlusion-level bin of the queries.

    Attributes
    ----------
    index
        Bin number, 0 = least occluded queries.
    occ_level_min, occ_level_max
        Range of the occlusion levels of the bin's queries.
    num_queries
        Queries in the bin.
    num_valid_queries
        Of those, queries with a true match (the ones averaged).
    mAP, rank1
        Averages over the valid queries of the bin, NaN if there is none.
    """

    index: int
    occ_level_min: float
    occ_level_max: float
    num_queries: int
    num_valid_queries: int
    mAP: float
    rank1: float


class SSMDResult(NamedTuple):
    """Separation of the positive and negative distance distributions.

    ``ssmd = |pos_mean - neg_mean| / (pos_std**2 + neg_std**2)``: like the official code there is
    no square root in the denominator, so this is not the textbook SSMD.
    """

    pos_mean: float
    pos_std: float
    neg_mean: float
    neg_std: float
    ssmd: float


def _to_numpy(x: ArrayLike) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _as_distmat(distmat: ArrayLike) -> np.ndarray:
    dist = _to_numpy(distmat)
    if dist.ndim != 2:
        raise KPRError(f"distmat must have shape [Nq, Ng], got shape {dist.shape}")
    if not np.issubdtype(dist.dtype, np.number) or np.isnan(dist).any():
        raise KPRError("distmat must be numeric and free of NaN")
    return dist


def _as_labels(labels: ArrayLike, length: int, name: str) -> np.ndarray:
    arr = _to_numpy(labels)
    if arr.shape != (length,):
        raise KPRError(f"{name} must have shape [{length}] to match distmat, got {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise KPRError(f"{name} must hold integers, got dtype {arr.dtype}")
    return arr


def _row_blocks(num_rows: int, num_cols: int) -> Iterator[slice]:
    step = max(1, _RANK_BLOCK_ELEMENTS // max(num_cols, 1))
    for start in range(0, num_rows, step):
        yield slice(start, min(start + step, num_rows))


def _ranked_matches(
    dist: np.ndarray,
    rows: slice,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    protocol: str,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Match flags along each sorted gallery row and which positions the protocol keeps.

    Returns
    -------
    matches
        ``[rows, Ng]`` bool, gallery sorted by ascending distance.
    keep
        ``[rows, Ng]`` bool, or None when nothing is removed.
    """
    order = np.argsort(dist[rows], axis=1, kind="stable")
    ranked_pids = g_pids[order]
    matches = ranked_pids == q_pids[rows, None]
    if protocol == "no_filter":
        return matches, None
    same_camera = g_camids[order] == q_camids[rows, None]
    remove = (matches & same_camera) | (ranked_pids == JUNK_PID)
    return matches, ~remove


def _query_scores(raw: np.ndarray, max_rank: int) -> tuple[np.ndarray, float, float]:
    """CMC ``[max_rank]``, AP and INP of one query from its filtered, ranked match flags."""
    hits = raw.cumsum()
    cmc = np.ones(max_rank, dtype=np.float32)
    head = np.minimum(hits[:max_rank], 1)
    cmc[: head.size] = head
    num_rel = hits[-1]
    precision = hits / np.arange(1.0, raw.size + 1.0) * raw
    ap = precision.sum() / num_rel
    hardest_rank = np.flatnonzero(raw)[-1] + 1
    inp = num_rel / hardest_rank
    return cmc, float(ap), float(inp)


def evaluate_rank(
    distmat: ArrayLike,
    q_pids: ArrayLike,
    g_pids: ArrayLike,
    q_camids: ArrayLike,
    g_camids: ArrayLike,
    *,
    max_rank: int = 50,
    protocol: Protocol = "market",
) -> RankResult:
    """CMC, mAP and mINP of a query-gallery distance matrix.

    Parameters
    ----------
    distmat
        ``[Nq, Ng]`` distances, smaller = more similar.
    q_pids, g_pids
        ``[Nq]`` and ``[Ng]`` integer identities. Gallery pid 0 (Market distractors) is an ordinary
        non-match; gallery pid -1 (junk) is ignored under the Market protocol.
    q_camids, g_camids
        ``[Nq]`` and ``[Ng]`` integer camera ids (unused by ``"no_filter"``).
    max_rank
        Length of the CMC curve, capped at Ng.
    protocol
        ``"market"``: for each query, gallery samples with the query's pid *and* camera are removed,
        as are junk samples. ``"no_filter"``: nothing is removed (Occluded-PoseTrack, where the
        queries are not in the gallery).

    Returns
    -------
    RankResult
        Averages over the queries that keep at least one true match; the others are skipped.

    Raises
    ------
    KPRError
        On malformed inputs, or when no query has a true match.
    """
    if protocol not in _PROTOCOLS:
        raise KPRError(f"protocol must be one of {_PROTOCOLS}, got {protocol!r}")
    if isinstance(max_rank, bool) or not isinstance(max_rank, int) or max_rank < 1:
        raise KPRError(f"max_rank must be a positive integer, got {max_rank!r}")
    dist = _as_distmat(distmat)
    num_q, num_g = dist.shape
    q_pids = _as_labels(q_pids, num_q, "q_pids")
    g_pids = _as_labels(g_pids, num_g, "g_pids")
    q_camids = _as_labels(q_camids, num_q, "q_camids")
    g_camids = _as_labels(g_camids, num_g, "g_camids")
    max_rank = min(max_rank, num_g)

    valid = np.zeros(num_q, dtype=bool)
    all_cmc, all_ap, all_inp = [], [], []
    for rows in _row_blocks(num_q, num_g):
        matches, keep = _ranked_matches(dist, rows, q_pids, g_pids, q_camids, g_camids, protocol)
        for offset, q_idx in enumerate(range(rows.start, rows.stop)):
            raw = matches[offset] if keep is None else matches[offset][keep[offset]]
            if not raw.any():
                continue
            cmc, ap, inp = _query_scores(raw, max_rank)
            valid[q_idx] = True
            all_cmc.append(cmc)
            all_ap.append(ap)
            all_inp.append(inp)

    num_valid = int(valid.sum())
    if num_valid == 0:
        raise KPRError(
            f"none of the {num_q} queries has a true match in the gallery of {num_g} samples "
            f"under the {protocol!r} protocol; check the pids and camids"
        )
    cmc_per_query = np.stack(all_cmc)
    ap = np.asarray(all_ap, dtype=np.float64)
    inp = np.asarray(all_inp, dtype=np.float64)
    return RankResult(
        cmc=cmc_per_query.sum(0) / float(num_valid),
        mAP=float(np.mean(ap)),
        mINP=float(np.mean(inp)),
        all_ap=ap,
        all_cmc=cmc_per_query,
        all_inp=inp,
        valid_query_mask=valid,
        num_queries_without_match=num_q - num_valid,
    )


def results_by_decile(
    distmat: ArrayLike,
    q_pids: ArrayLike,
    g_pids: ArrayLike,
    q_camids: ArrayLike,
    g_camids: ArrayLike,
    occ_levels: ArrayLike,
    *,
    num_bins: int = 10,
    max_rank: int = 50,
    protocol: Protocol = "no_filter",
) -> list[DecileResult]:
    """mAP and rank-1 per occlusion-level bin of the queries (Occluded-PoseTrack report).

    The queries are sorted by occlusion level (stable, ascending) and split into ``num_bins``
    consecutive groups of near-equal size (sizes differ by at most one).

    Parameters
    ----------
    distmat, q_pids, g_pids, q_camids, g_camids, max_rank, protocol
        As in :func:`evaluate_rank` (the protocol defaults to Occluded-PoseTrack's).
    occ_levels
        ``[Nq]`` occlusion level of every query.
    num_bins
        Number of bins, at most Nq.

    Returns
    -------
    list[DecileResult]
        One entry per bin, least occluded first.
    """
    dist = _as_distmat(distmat)
    num_q = dist.shape[0]
    occ = _to_numpy(occ_levels).astype(np.float64, copy=False)
    if occ.shape != (num_q,) or np.isnan(occ).any():
        raise KPRError(f"occ_levels must be [{num_q}] numbers without NaN, got shape {occ.shape}")
    if isinstance(num_bins, bool) or not isinstance(num_bins, int) or not 1 <= num_bins <= num_q:
        raise KPRError(f"num_bins must be an integer in [1, Nq={num_q}], got {num_bins!r}")
    result = evaluate_rank(
        dist, q_pids, g_pids, q_camids, g_camids, max_rank=max_rank, protocol=protocol
    )
    ap = np.full(num_q, np.nan)
    rank1 = np.full(num_q, np.nan)
    ap[result.valid_query_mask] = result.all_ap
    rank1[result.valid_query_mask] = result.all_cmc[:, 0]
    bins = []
    for index, members in enumerate(np.array_split(np.argsort(occ, kind="stable"), num_bins)):
        scored = members[result.valid_query_mask[members]]
        bins.append(
            DecileResult(
                index=index,
                occ_level_min=float(occ[members].min()),
                occ_level_max=float(occ[members].max()),
                num_queries=int(members.size),
                num_valid_queries=int(scored.size),
                mAP=float(ap[scored].mean()) if scored.size else float("nan"),
                rank1=float(rank1[scored].mean()) if scored.size else float("nan"),
            )
        )
    return bins


def ssmd(distmat: ArrayLike, q_pids: ArrayLike, g_pids: ArrayLike) -> SSMDResult:
    """Official "SSMD" between same-identity and different-identity distances.

    Every query-gallery pair counts, without camera filtering. Means and (population) standard
    deviations are computed in the distance matrix's dtype, as in the official code.

    Parameters
    ----------
    distmat
        ``[Nq, Ng]`` distances.
    q_pids, g_pids
        ``[Nq]`` and ``[Ng]`` integer identities.

    Returns
    -------
    SSMDResult
        ``(pos_mean, pos_std, neg_mean, neg_std, ssmd)``.
    """
    dist = _as_distmat(distmat)
    q_pids = _as_labels(q_pids, dist.shape[0], "q_pids")
    g_pids = _as_labels(g_pids, dist.shape[1], "g_pids")
    positive = q_pids[:, None] == g_pids[None, :]
    pos, neg = dist[positive], dist[~positive]
    if pos.size == 0 or neg.size == 0:
        raise KPRError(
            f"ssmd needs both same-identity and different-identity pairs, got {pos.size} and "
            f"{neg.size}"
        )
    pos_mean, pos_std = float(pos.mean()), float(pos.std())
    neg_mean, neg_std = float(neg.mean()), float(neg.std())
    spread = pos_std**2 + neg_std**2
    gap = abs(pos_mean - neg_mean)
    value = gap / spread if spread > 0 else (float("inf") if gap > 0 else float("nan"))
    return SSMDResult(pos_mean, pos_std, neg_mean, neg_std, value)
