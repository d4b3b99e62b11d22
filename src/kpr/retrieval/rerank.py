"""k-reciprocal re-ranking (Zhong et al., CVPR 2017, "Re-ranking Person Re-identification with
k-reciprocal Encoding"), written from the paper.

Queries and gallery form one set of N = Nq + Ng samples whose distance matrix is assembled from
the q-g, q-q and g-g blocks. For a sample p, with N(p, k) its k nearest neighbours (p itself
ranked first and counted on top of the k):

1. distances are squared and each sample's distances divided by their maximum (the max of its
   column of the symmetric matrix), which keeps every ranking;
2. R(p, k) = {i in N(p, k) : p in N(i, k)} is the k-reciprocal set;
3. R*(p, k1) adds R(q, round(k1/2)) for every q in R(p, k1) such that
   |R(p, k1) & R(q, round(k1/2))| >= 2/3 |R(q, round(k1/2))| (the paper's inequality);
4. V_p[i] = exp(-d(p, i)) for i in R*(p, k1), else 0, normalised to sum 1;
5. local query expansion replaces V_p by the mean of V over N(p, k2 - 1), i.e. the k2 top-ranked
   samples including p (k2 = 1 leaves V unchanged);
6. d_J(p, g) = 1 - sum_i min(V_p[i], V_g[i]) / sum_i max(V_p[i], V_g[i]);
7. d*(p, g) = (1 - lambda) d_J(p, g) + lambda d(p, g).

Memory: the three input blocks hold N^2 distances and every one of them is read to rank the
neighbours, so the cost is inherently O(N^2). No N x N copy is made: the full matrix is streamed
in row blocks, the V vectors are sparse (about k1 non-zeros per row before expansion), and the
Jaccard term is evaluated through an inverted index over the non-zeros (the paper's scheme).
``MAX_SAMPLES`` bounds N; at the bound the inputs alone take 3.6 GB in float32.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp

from kpr.errors import KPRError

__all__ = ["MAX_SAMPLES", "k_reciprocal_rerank"]

MAX_SAMPLES = 30_000
# Elements of the dense temporaries (distance row blocks, inverted-index expansions) per step.
_BLOCK_ELEMENTS = 1 << 22


def k_reciprocal_rerank(
    q_g: np.ndarray,
    q_q: np.ndarray,
    g_g: np.ndarray,
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
) -> np.ndarray:
    """Re-rank a query-gallery distance matrix with k-reciprocal encoding.

    Parameters
    ----------
    q_g
        ``[Nq, Ng]`` non-negative query-gallery distances (e.g. from ``part_distance``).
    q_q
        ``[Nq, Nq]`` query-query distances, symmetric.
    g_g
        ``[Ng, Ng]`` gallery-gallery distances, symmetric.
    k1
        Size of the k-reciprocal neighbourhoods (>= 1).
    k2
        Number of top-ranked samples, the sample itself included, averaged by the local query
        expansion (>= 1; 1 disables it).
    lambda_value
        Weight of the original distance in the result, in ``[0, 1]``.

    Returns
    -------
    np.ndarray
        ``[Nq, Ng]`` float32 re-ranked distances, smaller = more similar. With
        ``lambda_value=1`` this is the squared, normalised original distance.

    Raises
    ------
    KPRError
        On a malformed or non-finite input, an invalid parameter, or Nq + Ng > ``MAX_SAMPLES``.
    """
    if isinstance(k1, bool) or not isinstance(k1, (int, np.integer)) or k1 < 1:
        raise KPRError(f"k1 must be an integer >= 1, got {k1!r}")
    if isinstance(k2, bool) or not isinstance(k2, (int, np.integer)) or k2 < 1:
        raise KPRError(f"k2 must be an integer >= 1, got {k2!r}")
    if not 0.0 <= lambda_value <= 1.0:
        raise KPRError(f"lambda_value must be in [0, 1], got {lambda_value!r}")
    blocks = _Blocks(q_g, q_q, g_g)
    n, nq = blocks.n, blocks.nq
    k1_half = round(k1 / 2)
    ranked = blocks.nearest(max(k1 + 1, k2))

    r1 = _reciprocal_sets(ranked, k1)
    r_half = _reciprocal_sets(ranked, k1_half)
    # overlap[p, q] = |R(p, k1) & R(q, k1/2)| for q in R(p, k1); never 0 since q is in both.
    overlap = (r1 @ r_half.T).multiply(r1).tocoo()
    half_size = np.asarray(r_half.sum(axis=1)).ravel()
    kept = 3 * overlap.data >= 2 * half_size[overlap.col]
    expand = sp.csr_array(
        (np.ones(int(kept.sum()), np.int32), (overlap.row[kept], overlap.col[kept])),
        shape=(n, n),
    )
    support = (r1 + expand @ r_half).tocoo()

    weights = np.exp(-blocks.lookup(support.row, support.col))
    weights /= np.bincount(support.row, weights, minlength=n)[support.row]
    v = sp.csr_array((weights, (support.row, support.col)), shape=(n, n))
    if k2 > 1:
        width = min(k2, n)
        v = _row_sets(ranked[:, :width], np.float64(1.0 / width)) @ v

    out = np.empty((nq, n - nq), np.float32)
    for start, stop, jaccard in _jaccard_blocks(v[:nq].tocsr(), v[nq:].tocsc()):
        original = blocks.query_gallery(start, stop)
        out[start:stop] = (1.0 - lambda_value) * jaccard + lambda_value * original
    return out


class _Blocks:
    """The squared [N, N] distance matrix [[q_q, q_g], [q_g^T, g_g]], read without building it."""

    def __init__(self, q_g: np.ndarray, q_q: np.ndarray, g_g: np.ndarray) -> None:
        q_g, q_q, g_g = (np.asarray(x) for x in (q_g, q_q, g_g))
        if q_g.ndim != 2 or 0 in q_g.shape:
            raise KPRError(f"q_g must be a non-empty 2-D [Nq, Ng] array, got shape {q_g.shape}")
        nq, ng = q_g.shape
        if q_q.shape != (nq, nq):
            raise KPRError(
                f"q_q must have shape [Nq, Nq] = {(nq, nq)} to match q_g, got {q_q.shape}"
            )
        if g_g.shape != (ng, ng):
            raise KPRError(
                f"g_g must have shape [Ng, Ng] = {(ng, ng)} to match q_g, got {g_g.shape}"
            )
        if nq + ng > MAX_SAMPLES:
            raise KPRError(
                f"re-ranking {nq} queries + {ng} gallery samples = {nq + ng} exceeds the limit of "
                f"{MAX_SAMPLES} samples (memory and time grow with the square of the count)"
            )
        self.q_g, self.q_q, self.g_g = q_g, q_q, g_g
        self.nq, self.n = nq, nq + ng
        # Column maxima of the squared matrix; the reductions also catch NaN and inf per block.
        peaks = {
            "q_q": _abs_peak(q_q, axis=0),
            "q_g": np.concatenate([_abs_peak(q_g, axis=1), _abs_peak(q_g, axis=0)]),
            "g_g": _abs_peak(g_g, axis=0),
        }
        for name, peak in peaks.items():
            if not np.isfinite(peak).all():
                raise KPRError(f"{name} contains NaN or infinite distances")
        peak = np.maximum(np.concatenate([peaks["q_q"], peaks["g_g"]]), peaks["q_g"])
        scale = np.square(peak, dtype=np.float64)
        self.scale = np.where(scale > 0, scale, 1.0)

    def rows(self, start: int, stop: int) -> np.ndarray:
        """``[stop-start, N]`` squared, unnormalised distances of samples ``start:stop``."""
        nq = self.nq
        parts = []
        if start < nq:
            end = min(stop, nq)
            parts.append(np.hstack([self.q_q[start:end], self.q_g[start:end]]))
        if stop > nq:
            begin = max(start, nq) - nq
            parts.append(np.hstack([self.q_g[:, begin : stop - nq].T, self.g_g[begin : stop - nq]]))
        return np.square(np.vstack(parts), dtype=np.float64)

    def nearest(self, count: int) -> np.ndarray:
        """``[N, min(count, N)]`` indices of each sample's nearest samples, itself first."""
        n = self.n
        count = min(count, n)
        out = np.empty((n, count), np.int64)
        step = max(1, _BLOCK_ELEMENTS // n)
        for start in range(0, n, step):
            stop = min(start + step, n)
            d = self.rows(start, stop)
            local = np.arange(stop - start)
            # A duplicate sample at distance 0 must not displace the sample itself.
            d[local, start + local] = -1.0
            if count < n:
                top = np.argpartition(d, count - 1, axis=1)[:, :count]
            else:
                top = np.broadcast_to(np.arange(n), d.shape)
            order = np.lexsort((top, np.take_along_axis(d, top, axis=1)), axis=1)
            out[start:stop] = np.take_along_axis(top, order, axis=1)
        return out

    def lookup(self, row: np.ndarray, col: np.ndarray) -> np.ndarray:
        """Normalised squared distances of the pairs ``(row[i], col[i])``."""
        nq = self.nq
        out = np.empty(row.shape, np.float64)
        rq, cq = row < nq, col < nq
        for mask, block, r, c in (
            (rq & cq, self.q_q, row, col),
            (rq & ~cq, self.q_g, row, col - nq),
            (~rq & cq, self.q_g, col, row - nq),
            (~rq & ~cq, self.g_g, row - nq, col - nq),
        ):
            out[mask] = block[r[mask], c[mask]]
        return np.square(out) / self.scale[row]

    def query_gallery(self, start: int, stop: int) -> np.ndarray:
        """``[stop-start, Ng]`` normalised squared distances of queries ``start:stop``."""
        d = np.square(self.q_g[start:stop], dtype=np.float64)
        return d / self.scale[start:stop, None]


def _abs_peak(x: np.ndarray, axis: int) -> np.ndarray:
    return np.maximum(x.max(axis=axis), -x.min(axis=axis))


def _row_sets(columns: np.ndarray, value: np.generic) -> sp.csr_array:
    """``[N, N]`` matrix holding ``value`` at ``(p, columns[p, j])`` for every p and j."""
    n, width = columns.shape
    rows = np.repeat(np.arange(n), width)
    return sp.csr_array((np.full(n * width, value), (rows, columns.ravel())), shape=(n, n))


def _reciprocal_sets(ranked: np.ndarray, k: int) -> sp.csr_array:
    """``[N, N]`` 0/1 int32 matrix whose row p marks R(p, k)."""
    member = _row_sets(ranked[:, : k + 1], np.int32(1))
    return member.multiply(member.T).tocsr()


def _jaccard_blocks(vq: sp.csr_array, vg: sp.csc_array) -> Iterator[tuple[int, int, np.ndarray]]:
    """Jaccard distances between the rows of ``vq`` ``[Nq, N]`` and ``vg`` ``[Ng, N]`` (both >= 0),
    as ``(start, stop, [stop-start, Ng] block)`` over consecutive query blocks.

    sum_i min(V_p[i], V_g[i]) only has terms where both are non-zero: each query non-zero (p, i) is
    paired with the gallery non-zeros of column i and the minima are accumulated per (p, g).
    """
    nq, ng = vq.shape[0], vg.shape[0]
    pair_counts = np.diff(vg.indptr)[vq.indices]
    query_nnz = np.diff(vq.indptr)
    per_query = np.bincount(np.repeat(np.arange(nq), query_nnz), pair_counts, minlength=nq)
    q_sum = np.asarray(vq.sum(axis=1)).ravel()
    g_sum = np.asarray(vg.sum(axis=1)).ravel()
    max_rows = max(1, _BLOCK_ELEMENTS // ng)
    start = 0
    while start < nq:
        budget = np.cumsum(per_query[start : start + max_rows])
        stop = start + max(1, int(np.searchsorted(budget, _BLOCK_ELEMENTS, side="right")))
        lo, hi = vq.indptr[start], vq.indptr[stop]
        lengths = pair_counts[lo:hi]
        first = vg.indptr[vq.indices[lo:hi]]
        # Position in vg's data of every (query non-zero, gallery non-zero) pair.
        offsets = np.repeat(first - (np.cumsum(lengths) - lengths), lengths) + np.arange(
            lengths.sum()
        )
        query_row = np.repeat(np.repeat(np.arange(stop - start), query_nnz[start:stop]), lengths)
        mins = np.minimum(np.repeat(vq.data[lo:hi], lengths), vg.data[offsets])
        pair = query_row * ng + vg.indices[offsets]
        min_sum = np.bincount(pair, mins, minlength=(stop - start) * ng).reshape(stop - start, ng)
        yield start, stop, 1.0 - min_sum / (q_sum[start:stop, None] + g_sum[None, :] - min_sum)
        start = stop
