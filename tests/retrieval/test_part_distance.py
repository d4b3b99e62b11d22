"""Part-based distance: hand-computed cases, chunking, streaming top-k, properties and errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import kpr.retrieval.distance as distance_module
from kpr.errors import KPRError
from kpr.retrieval import body_part_distance, l2_normalize, part_distance, topk_gallery

R2 = math.sqrt(2.0)

# 2 queries x 3 gallery, 2 slots of unit vectors in 2-D (slot 0 and slot 1 per sample).
Q_EMB = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[0.0, 1.0], [1.0, 0.0]]])
G_EMB = torch.tensor(
    [[[1.0, 0.0], [1.0, 0.0]], [[0.0, 1.0], [0.0, 1.0]], [[-1.0, 0.0], [0.0, -1.0]]]
)
Q_VIS = torch.tensor([[True, True], [True, False]])
G_VIS = torch.tensor([[True, True], [False, True], [False, False]])
# Valid entries: (s0,q0,g0)=0, (s1,q0,g0)=sqrt2, (s1,q0,g1)=0, (s0,q1,g0)=sqrt2. The largest
# per-slot distance, 2 (q0-g2), is invalid, so the sentinel is sqrt2 + 1, not 3.
SENTINEL = R2 + 1


def _random_problem(seed: int, nq: int, ng: int, s: int, d: int, p_vis: float, continuous: bool):
    gen = torch.Generator().manual_seed(seed)
    q = l2_normalize(torch.randn(nq, s, d, generator=gen))
    g = l2_normalize(torch.randn(ng, s, d, generator=gen))
    qv = torch.rand(nq, s, generator=gen) < p_vis
    gv = torch.rand(ng, s, generator=gen) < p_vis
    if continuous:
        qv = qv * torch.rand(nq, s, generator=gen)
        gv = gv * torch.rand(ng, s, generator=gen)
    return q, g, qv, gv


class TestHandComputed:
    def test_binary_mean(self):
        got = part_distance(Q_EMB, G_EMB, Q_VIS, G_VIS)
        want = [[R2 / 2, 0.0, SENTINEL], [R2, SENTINEL, SENTINEL]]
        np.testing.assert_allclose(got.numpy(), want, atol=1e-6)

    def test_binary_max(self):
        got = part_distance(Q_EMB, G_EMB, Q_VIS, G_VIS, combine="max")
        want = [[R2, 0.0, SENTINEL], [R2, SENTINEL, SENTINEL]]
        np.testing.assert_allclose(got.numpy(), want, atol=1e-6)

    def test_no_visibility_mean_and_max(self):
        mean = part_distance(Q_EMB, G_EMB)
        np.testing.assert_allclose(
            mean.numpy(), [[R2 / 2, R2 / 2, 2.0], [R2 / 2, R2 / 2, R2]], atol=1e-6
        )
        biggest = part_distance(Q_EMB, G_EMB, combine="max")
        np.testing.assert_allclose(biggest.numpy(), [[R2, R2, 2.0], [R2, R2, R2]], atol=1e-6)

    def test_cosine(self):
        got = part_distance(Q_EMB, G_EMB, metric="cosine")
        # per slot 1 - dot: equal -> 0, orthogonal -> 1, opposite -> 2
        np.testing.assert_allclose(got.numpy(), [[0.5, 0.5, 2.0], [0.5, 0.5, 1.0]], atol=1e-6)

    def test_continuous_visibility_weights_sqrt_product(self):
        q_vis = torch.tensor([[1.0, 0.25], [0.49, 0.0]])
        g_vis = torch.tensor([[1.0, 1.0], [0.0, 0.64], [0.0, 0.0]])
        got = part_distance(Q_EMB, G_EMB, q_vis, g_vis)
        # q0-g0: weights (1, 0.5) on distances (0, sqrt2); q0-g1: weight 0.4 on distance 0;
        # q1-g0: weight 0.7 on sqrt2; the rest have zero total weight.
        want = [[R2 / 3, 0.0, SENTINEL], [R2, SENTINEL, SENTINEL]]
        np.testing.assert_allclose(got.numpy(), want, atol=1e-6)

    def test_body_part_matrix_replaces_invalid_entries(self):
        got = body_part_distance(Q_EMB, G_EMB, Q_VIS, G_VIS)
        want = [
            [[0.0, SENTINEL, SENTINEL], [R2, SENTINEL, SENTINEL]],
            [[R2, 0.0, SENTINEL], [SENTINEL, SENTINEL, SENTINEL]],
        ]
        np.testing.assert_allclose(got.numpy(), want, atol=1e-6)

    def test_body_part_matrix_without_binary_visibility_is_raw(self):
        raw = body_part_distance(Q_EMB, G_EMB)
        assert raw.shape == (2, 2, 3)
        np.testing.assert_allclose(raw[0, 0].numpy(), [0.0, R2, 2.0], atol=1e-6)
        continuous = body_part_distance(Q_EMB, G_EMB, Q_VIS.float() * 0.5, G_VIS.float())
        torch.testing.assert_close(continuous, raw)

    def test_no_valid_entry_anywhere_gives_sentinel_one(self):
        nobody = torch.zeros(2, 2, dtype=torch.bool)
        got = part_distance(Q_EMB, G_EMB[:2], nobody, nobody)
        np.testing.assert_array_equal(got.numpy(), np.ones((2, 2), dtype=np.float32))

    def test_unnormalized_euclidean(self):
        q = torch.tensor([[[3.0, 0.0]]])
        g = torch.tensor([[[0.0, 4.0]], [[3.0, 0.0]]])
        np.testing.assert_allclose(part_distance(q, g).numpy(), [[5.0, 0.0]], atol=1e-6)
        np.testing.assert_allclose(
            part_distance(q, g, normalize=True).numpy(), [[R2, 0.0]], atol=1e-6
        )

    def test_numpy_inputs_and_float64(self):
        q, g = Q_EMB.double().numpy(), G_EMB.double().numpy()
        got = part_distance(q, g, Q_VIS.numpy(), G_VIS.numpy())
        assert got.dtype == torch.float64
        np.testing.assert_allclose(got.numpy()[0, :2], [R2 / 2, 0.0], atol=1e-12)


MODES = [
    {},
    {"combine": "max"},
    {"metric": "cosine"},
    {"continuous": True},
    {"continuous": True, "combine": "max"},
    {"no_vis": True},
]


@pytest.mark.parametrize("mode", MODES, ids=str)
@pytest.mark.parametrize("chunks", [(1, 1), (7, 3), (32, 64), (1000, 1000)], ids=str)
def test_chunked_equals_unchunked(mode, chunks):
    mode = dict(mode)
    continuous = mode.pop("continuous", False)
    no_vis = mode.pop("no_vis", False)
    q, g, qv, gv = _random_problem(3, 23, 41, 4, 8, 0.4, continuous)
    if no_vis:
        qv = gv = None
    whole = part_distance(q, g, qv, gv, chunk_size=10_000, query_chunk_size=10_000, **mode)
    chunked = part_distance(q, g, qv, gv, chunk_size=chunks[0], query_chunk_size=chunks[1], **mode)
    torch.testing.assert_close(chunked, whole, rtol=0, atol=1e-6)
    if not no_vis:
        assert bool((((qv > 0).float() @ (gv > 0).float().T) == 0).any()), "no invalid pair"


def test_blocks_never_exceed_the_chunk_sizes(monkeypatch):
    shapes = []
    original = distance_module._slot_distances

    def recording(problem, qs, gs):
        out = original(problem, qs, gs)
        shapes.append(tuple(out.shape))
        return out

    monkeypatch.setattr(distance_module, "_slot_distances", recording)
    q, g, qv, gv = _random_problem(0, 30, 50, 3, 4, 0.5, False)
    part_distance(q, g, qv, gv, chunk_size=8, query_chunk_size=16)
    topk_gallery(q, g, qv, gv, 5, chunk_size=8, query_chunk_size=16)
    assert shapes and max(s[1] for s in shapes) <= 16 and max(s[2] for s in shapes) <= 8


class TestTopk:
    @pytest.mark.parametrize("mode", MODES[:4], ids=str)
    @pytest.mark.parametrize("chunk_size", [1, 6, 100])
    def test_matches_argsort_of_full_matrix(self, mode, chunk_size):
        mode = dict(mode)
        continuous = mode.pop("continuous", False)
        # every slot visible with p=0.9 and 5 slots: no invalid pair, so no ties
        q, g, qv, gv = _random_problem(5, 13, 37, 5, 6, 0.9, continuous)
        qv[:, 0] = True if qv.dtype == torch.bool else 1.0
        full = part_distance(q, g, qv, gv, **mode)
        k = 9
        dist, idx = topk_gallery(q, g, qv, gv, k, chunk_size=chunk_size, query_chunk_size=4, **mode)
        want_idx = torch.argsort(full, dim=1, stable=True)[:, :k]
        torch.testing.assert_close(idx, want_idx, rtol=0, atol=0)
        torch.testing.assert_close(dist, full.gather(1, want_idx), rtol=0, atol=1e-6)

    def test_invalid_pairs_rank_last_with_the_sentinel(self):
        q, g, qv, gv = _random_problem(9, 6, 30, 3, 4, 0.3, False)
        full = part_distance(q, g, qv, gv)
        dist, idx = topk_gallery(q, g, qv, gv, 30, chunk_size=7)
        torch.testing.assert_close(dist, torch.sort(full, dim=1).values, rtol=0, atol=1e-6)
        torch.testing.assert_close(full.gather(1, idx), dist, rtol=0, atol=1e-6)
        for row in idx:
            assert sorted(row.tolist()) == list(range(30))

    def test_equal_distances_are_ordered_by_index(self):
        q = torch.tensor([[[1.0, 0.0]]])
        g = torch.tensor([[[0.0, 1.0]]] * 5 + [[[1.0, 0.0]]])
        dist, idx = topk_gallery(q, g, None, None, 6, chunk_size=2)
        assert idx.tolist() == [[5, 0, 1, 2, 3, 4]]
        np.testing.assert_allclose(dist.numpy(), [[0.0] + [R2] * 5], atol=1e-6)

    def test_hand_case(self):
        dist, idx = topk_gallery(Q_EMB, G_EMB, Q_VIS, G_VIS, 2)
        assert idx.tolist() == [[1, 0], [0, 1]]
        np.testing.assert_allclose(dist.numpy(), [[0.0, R2 / 2], [R2, SENTINEL]], atol=1e-6)


def _problem_strategy(continuous: bool | None = None):
    return st.tuples(
        st.integers(0, 2**31 - 1),
        st.integers(1, 6),
        st.integers(1, 6),
        st.integers(1, 4),
        st.integers(1, 5),
        st.sampled_from([0.0, 0.3, 0.7, 1.0]),
        st.booleans() if continuous is None else st.just(continuous),
    )


PROPERTY_SETTINGS = settings(max_examples=40, deadline=None)


@PROPERTY_SETTINGS
@given(
    problem=_problem_strategy(),
    metric=st.sampled_from(["euclidean", "cosine"]),
    combine=st.sampled_from(["mean", "max"]),
)
def test_symmetry(problem, metric, combine):
    q, g, qv, gv = _random_problem(*problem)
    forward = part_distance(q, g, qv, gv, metric=metric, combine=combine, chunk_size=2)
    backward = part_distance(g, q, gv, qv, metric=metric, combine=combine, query_chunk_size=3)
    torch.testing.assert_close(forward, backward.T, rtol=0, atol=1e-5)


@PROPERTY_SETTINGS
@given(problem=_problem_strategy(), combine=st.sampled_from(["mean", "max"]))
def test_non_negative_and_at_most_two_for_unit_vectors(problem, combine):
    q, g, qv, gv = _random_problem(*problem)
    # foreground slot always visible, as in the model: every pair has a valid slot
    qv[:, 0] = True if qv.dtype == torch.bool else 1.0
    gv[:, 0] = True if gv.dtype == torch.bool else 1.0
    for metric in ("euclidean", "cosine"):
        dist = part_distance(q, g, qv, gv, metric=metric, combine=combine)
        assert bool((dist >= 0).all()) and bool((dist <= 2 + 1e-5).all())


@PROPERTY_SETTINGS
@given(problem=_problem_strategy(), combine=st.sampled_from(["mean", "max"]))
def test_invisible_slots_do_not_matter(problem, combine):
    q, g, qv, gv = _random_problem(*problem)
    seed = problem[0]
    gen = torch.Generator().manual_seed(seed + 1)
    q2 = torch.where((qv > 0)[..., None], q, l2_normalize(torch.randn(q.shape, generator=gen)))
    g2 = torch.where((gv > 0)[..., None], g, l2_normalize(torch.randn(g.shape, generator=gen)))
    before = part_distance(q, g, qv, gv, combine=combine)
    after = part_distance(q2, g2, qv, gv, combine=combine, chunk_size=3)
    torch.testing.assert_close(after, before, rtol=0, atol=1e-6)


@PROPERTY_SETTINGS
@given(problem=_problem_strategy(continuous=False))
def test_sentinel_exceeds_every_valid_distance(problem):
    q, g, qv, gv = _random_problem(*problem)
    dist = part_distance(q, g, qv, gv)
    invalid = (qv.float() @ gv.float().T) == 0
    parts = body_part_distance(q, g, qv, gv)
    if invalid.any():
        assert bool((dist[invalid] == parts.max()).all())
        if (~invalid).any():
            assert dist[~invalid].max() < parts.max()


class TestErrors:
    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"metric": "manhattan"}, "metric"),
            ({"combine": "median"}, "combine"),
            ({"chunk_size": 0}, "chunk_size"),
            ({"query_chunk_size": -1}, "query_chunk_size"),
        ],
    )
    def test_bad_options(self, kwargs, message):
        with pytest.raises(KPRError, match=message):
            part_distance(Q_EMB, G_EMB, **kwargs)

    def test_shape_mismatch(self):
        with pytest.raises(KPRError, match=r"share the slot count"):
            part_distance(Q_EMB, G_EMB[:, :1])
        with pytest.raises(KPRError, match=r"q_emb must have shape \[N, S, D\]"):
            part_distance(Q_EMB[0], G_EMB)
        with pytest.raises(KPRError, match="g_vis must have shape"):
            part_distance(Q_EMB, G_EMB, Q_VIS, G_VIS[:2])

    def test_visibility_must_come_in_pairs(self):
        with pytest.raises(KPRError, match="both q_vis and g_vis"):
            part_distance(Q_EMB, G_EMB, Q_VIS, None)

    def test_negative_visibility(self):
        with pytest.raises(KPRError, match="q_vis must hold finite non-negative"):
            part_distance(Q_EMB, G_EMB, -Q_VIS.float(), G_VIS.float())

    def test_non_finite_embeddings(self):
        bad = Q_EMB.clone()
        bad[0, 0, 0] = float("nan")
        with pytest.raises(KPRError, match="q_emb contains NaN"):
            part_distance(bad, G_EMB)

    @pytest.mark.parametrize("k", [0, 4, 2.5])
    def test_bad_k(self, k):
        with pytest.raises(KPRError, match=r"k must be an integer in \[1, Ng=3\]"):
            topk_gallery(Q_EMB, G_EMB, None, None, k)
