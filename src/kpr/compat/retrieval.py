"""Official-evaluator-shaped entry points: the default test distance and Market-1501 scores."""

from __future__ import annotations

import numpy as np

from kpr.retrieval.distance import ArrayLike, part_distance
from kpr.retrieval.metrics import evaluate_rank

__all__ = ["official_distance", "official_eval"]


def official_distance(
    q_emb: ArrayLike,
    g_emb: ArrayLike,
    q_vis: ArrayLike | None,
    g_vis: ArrayLike | None,
) -> np.ndarray:
    """The official default part-based distance matrix.

    Euclidean per slot, mean over the mutually visible slots, features used as given (the official
    engine L2-normalises them beforehand).

    Parameters
    ----------
    q_emb, g_emb
        Test embeddings ``[Nq, 1+K, D]`` and ``[Ng, 1+K, D]`` (foreground slot first).
    q_vis, g_vis
        Visibility ``[Nq, 1+K]`` and ``[Ng, 1+K]`` (bool for the default binary mode), or None.

    Returns
    -------
    np.ndarray
        ``[Nq, Ng]`` distances; pairs without a valid slot hold ``max(per-slot distances) + 1``.
    """
    dist = part_distance(q_emb, g_emb, q_vis, g_vis, metric="euclidean", combine="mean")
    return dist.cpu().numpy()


def official_eval(
    distmat: ArrayLike,
    q_pids: ArrayLike,
    g_pids: ArrayLike,
    q_camids: ArrayLike,
    g_camids: ArrayLike,
    max_rank: int = 50,
) -> tuple[np.ndarray, float]:
    """Market-1501 protocol CMC and mAP, as the official ``evaluate_rank`` returns them.

    Parameters
    ----------
    distmat
        ``[Nq, Ng]`` distances.
    q_pids, g_pids, q_camids, g_camids
        Integer identities and cameras, ``[Nq]`` / ``[Ng]``.
    max_rank
        CMC length (capped at Ng).

    Returns
    -------
    cmc
        ``[max_rank]`` float32.
    mAP
        Mean average precision over the queries with a true match.
    """
    result = evaluate_rank(
        distmat, q_pids, g_pids, q_camids, g_camids, max_rank=max_rank, protocol="market"
    )
    return result.cmc, result.mAP
