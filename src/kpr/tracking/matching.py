"""Gated one-to-one assignment of detections to tracks (the Hungarian algorithm)."""

from __future__ import annotations

import dataclasses

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import linear_sum_assignment

from kpr.errors import KPRError

# Stands in for a forbidden pair: larger than any sum of allowed costs, so the solver first
# maximises the number of allowed pairs and only then minimises their total distance.
_FORBIDDEN = 1e6
# Breaks exact ties towards pairing track i with detection i (older tracks and earlier
# detections first); far below any distance difference that matters.
_TIE_BREAK = 1e-12


@dataclasses.dataclass(frozen=True)
class Assignment:
    """The result of :func:`match`.

    Attributes
    ----------
    pairs : tuple of (track index, detection index)
        Matched pairs, each with a distance strictly below the gate, in track order.
    unmatched_tracks, unmatched_detections : tuple of int
        Indices left without a partner, ascending.
    """

    pairs: tuple[tuple[int, int], ...]
    unmatched_tracks: tuple[int, ...]
    unmatched_detections: tuple[int, ...]


def match(distance: ArrayLike, gate: float, allowed: ArrayLike | None = None) -> Assignment:
    """Assign detections to tracks: minimum total distance over pairs below ``gate``.

    Among assignments, the one with the most pairs below the gate wins, then the one with the
    smallest total distance; exact ties pair track i with detection i first.

    Parameters
    ----------
    distance : array [T, D]
        Track-to-detection distances (finite or +inf).
    gate : float
        Only pairs with ``distance < gate`` can be matched.
    allowed : bool array [T, D], optional
        Further restricts the pairs that can be matched (e.g. an IoU gate).
    """
    cost = np.asarray(distance, dtype=np.float64)
    if cost.ndim != 2:
        raise KPRError(f"match: distance must be a [T, D] matrix, got shape {cost.shape}")
    if np.isnan(cost).any():
        raise KPRError("match: distance contains NaN")
    ok = cost < gate
    if allowed is not None:
        allowed = np.asarray(allowed, dtype=bool)
        if allowed.shape != cost.shape:
            raise KPRError(f"match: allowed has shape {allowed.shape}, expected {cost.shape}")
        ok &= allowed
    n_tracks, n_dets = cost.shape
    rows = np.arange(n_tracks)[:, None]
    cols = np.arange(n_dets)[None, :]
    solver_cost = np.where(ok, cost, _FORBIDDEN) + _TIE_BREAK * (rows - cols) ** 2
    pairs: list[tuple[int, int]] = []
    if ok.any():
        for t, d in zip(*linear_sum_assignment(solver_cost), strict=True):
            if ok[t, d]:
                pairs.append((int(t), int(d)))
    matched_t = {t for t, _ in pairs}
    matched_d = {d for _, d in pairs}
    return Assignment(
        pairs=tuple(pairs),
        unmatched_tracks=tuple(t for t in range(n_tracks) if t not in matched_t),
        unmatched_detections=tuple(d for d in range(n_dets) if d not in matched_d),
    )


def box_iou(a: ArrayLike, b: ArrayLike) -> NDArray[np.float64]:
    """[Na, Nb] IoU of boxes ``a`` [Na, 4] and ``b`` [Nb, 4], each (x0, y0, x1, y1)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    ix = np.clip(
        np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None
    )
    iy = np.clip(
        np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None
    )
    inter = ix * iy
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
