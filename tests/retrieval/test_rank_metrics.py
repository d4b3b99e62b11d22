"""CMC / mAP / mINP, per-decile scores and SSMD: official fixture and hand-computed cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from kpr.compat.retrieval import official_eval
from kpr.errors import KPRError
from kpr.retrieval import evaluate_rank, results_by_decile, ssmd

FIXTURE_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "distance_metrics"
FIXTURE = FIXTURE_DIR / "distance_metrics_seed0.npz"


@pytest.fixture(scope="module")
def dm() -> dict[str, np.ndarray]:
    with np.load(FIXTURE) as archive:
        return {key: archive[key] for key in archive.files}


def _labels(dm):
    return dm["q_pids"], dm["g_pids"], dm["q_camids"], dm["g_camids"]


class TestOfficialFixture:
    def test_market_protocol_bit_exact(self, dm):
        result = evaluate_rank(dm["distmat"], *_labels(dm), max_rank=50, protocol="market")
        assert result.cmc.dtype == np.float32 and result.all_cmc.dtype == np.float32
        np.testing.assert_array_equal(result.cmc, dm["market_cmc"])
        assert result.mAP == dm["market_mAP"]
        np.testing.assert_array_equal(result.all_ap, dm["market_all_AP"])
        np.testing.assert_array_equal(result.all_cmc, dm["market_all_cmc"])
        np.testing.assert_array_equal(result.valid_query_mask, dm["market_valid_query_mask"])
        assert result.num_queries_without_match == 4
        assert np.flatnonzero(~result.valid_query_mask).tolist() == [0, 1, 2, 3]

    def test_no_filter_protocol_bit_exact(self, dm):
        result = evaluate_rank(dm["distmat"], *_labels(dm), protocol="no_filter")
        np.testing.assert_array_equal(result.cmc, dm["nofilter_cmc"])
        assert result.mAP == dm["nofilter_mAP"]
        np.testing.assert_array_equal(result.all_ap, dm["nofilter_all_AP"])
        np.testing.assert_array_equal(result.valid_query_mask, dm["nofilter_valid_query_mask"])
        assert result.num_queries_without_match == 1

    def test_ranking_in_small_row_blocks_changes_nothing(self, dm, monkeypatch):
        import kpr.retrieval.metrics as metrics_module

        monkeypatch.setattr(metrics_module, "_RANK_BLOCK_ELEMENTS", 500)
        result = evaluate_rank(dm["distmat"], *_labels(dm))
        np.testing.assert_array_equal(result.all_ap, dm["market_all_AP"])
        np.testing.assert_array_equal(result.cmc, dm["market_cmc"])

    def test_torch_inputs(self, dm):
        result = evaluate_rank(
            torch.from_numpy(dm["distmat"]), *(torch.from_numpy(x) for x in _labels(dm))
        )
        assert result.mAP == dm["market_mAP"]

    def test_ssmd_reproduces_the_official_quirk(self, dm):
        got = ssmd(dm["distmat"], dm["q_pids"], dm["g_pids"])
        assert tuple(got) == tuple(dm["ssmd"].tolist())
        textbook = abs(got.pos_mean - got.neg_mean) / np.hypot(got.pos_std, got.neg_std)
        assert got.ssmd != pytest.approx(textbook)

    def test_official_eval(self, dm):
        cmc, mean_ap = official_eval(dm["distmat"], *_labels(dm))
        np.testing.assert_array_equal(cmc, dm["market_cmc"])
        assert mean_ap == dm["market_mAP"]


# 2 queries x 3 gallery. Query 0 (pid 1, cam 0) ranks g1 (pid 2), g2 (pid 1, cam 0), g0 (pid 1,
# cam 1); query 1 (pid 2, cam 0) ranks g1 (pid 2, cam 1) first.
DIST = np.array([[0.3, 0.1, 0.2], [0.5, 0.4, 0.6]])
Q_PIDS, G_PIDS = np.array([1, 2]), np.array([1, 2, 1])
Q_CAMS, G_CAMS = np.array([0, 0]), np.array([1, 1, 0])


class TestHandComputed:
    def test_market(self):
        # q0: g2 removed (same pid and camera) -> [miss, hit]: AP 1/2, INP 1/2, CMC [0, 1, 1]
        # q1: [hit, miss, miss]: AP 1, INP 1, CMC [1, 1, 1]
        result = evaluate_rank(DIST, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, max_rank=3)
        np.testing.assert_array_equal(result.all_cmc, [[0, 1, 1], [1, 1, 1]])
        np.testing.assert_allclose(result.all_ap, [0.5, 1.0])
        np.testing.assert_allclose(result.all_inp, [0.5, 1.0])
        np.testing.assert_allclose(result.cmc, [0.5, 1.0, 1.0])
        assert result.mAP == pytest.approx(0.75) and result.mINP == pytest.approx(0.75)
        assert result.rank1 == 0.5

    def test_no_filter(self):
        # q0: [miss, hit, hit]: AP (1/2 + 2/3) / 2 = 7/12, INP 2/3
        result = evaluate_rank(DIST, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, protocol="no_filter")
        np.testing.assert_allclose(result.all_ap, [7 / 12, 1.0])
        np.testing.assert_allclose(result.all_inp, [2 / 3, 1.0])
        assert result.mAP == pytest.approx(19 / 24)
        assert result.mINP == pytest.approx(5 / 6)

    def test_cmc_is_capped_at_gallery_size_and_padded_after_filtering(self):
        result = evaluate_rank(DIST, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, max_rank=50)
        assert result.cmc.shape == (3,)
        # q0 keeps only 2 gallery items after filtering; its curve is padded with its final value
        np.testing.assert_array_equal(result.all_cmc[0], [0, 1, 1])

    def test_junk_is_ignored_and_distractors_are_negatives(self):
        dist = np.array([[0.1, 0.2, 0.3]])
        q_pids, q_cams = np.array([7]), np.array([0])
        g_cams = np.array([1, 1, 1])
        junk_first = evaluate_rank(dist, q_pids, np.array([-1, 7, 0]), q_cams, g_cams)
        assert junk_first.mAP == 1.0
        distractor_first = evaluate_rank(dist, q_pids, np.array([0, 7, -1]), q_cams, g_cams)
        assert distractor_first.mAP == 0.5
        no_filter = evaluate_rank(
            dist, q_pids, np.array([-1, 7, 0]), q_cams, g_cams, protocol="no_filter"
        )
        assert no_filter.mAP == 0.5

    def test_query_without_match_is_skipped_and_counted(self):
        q_pids = np.array([1, 9])
        result = evaluate_rank(DIST, q_pids, G_PIDS, Q_CAMS, G_CAMS)
        assert result.valid_query_mask.tolist() == [True, False]
        assert result.num_queries_without_match == 1
        assert result.mAP == 0.5

    def test_no_valid_query_raises_with_count(self):
        with pytest.raises(KPRError, match="none of the 2 queries has a true match"):
            evaluate_rank(DIST, np.array([8, 9]), G_PIDS, Q_CAMS, G_CAMS)
        with pytest.raises(KPRError, match="none of the 1 queries"):
            evaluate_rank(DIST[:1], Q_PIDS[:1], G_PIDS, Q_CAMS[:1], np.array([0, 5, 0]))

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"protocol": "duke"}, "protocol"),
            ({"max_rank": 0}, "max_rank"),
        ],
    )
    def test_bad_options(self, kwargs, message):
        with pytest.raises(KPRError, match=message):
            evaluate_rank(DIST, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, **kwargs)

    def test_bad_inputs(self):
        with pytest.raises(KPRError, match=r"g_pids must have shape \[3\]"):
            evaluate_rank(DIST, Q_PIDS, G_PIDS[:2], Q_CAMS, G_CAMS)
        with pytest.raises(KPRError, match="q_camids must hold integers"):
            evaluate_rank(DIST, Q_PIDS, G_PIDS, Q_CAMS.astype(float), G_CAMS)
        with pytest.raises(KPRError, match=r"distmat must have shape \[Nq, Ng\]"):
            evaluate_rank(DIST[0], Q_PIDS, G_PIDS, Q_CAMS, G_CAMS)
        with pytest.raises(KPRError, match="NaN"):
            evaluate_rank(np.full((2, 3), np.nan), Q_PIDS, G_PIDS, Q_CAMS, G_CAMS)


def _independent_ap(ranked_matches: np.ndarray) -> float:
    positions = np.flatnonzero(ranked_matches) + 1
    return float(np.mean(np.arange(1, positions.size + 1) / positions))


def test_random_problem_against_independent_formulas():
    rng = np.random.default_rng(0)
    nq, ng = 40, 120
    dist = rng.random((nq, ng))
    q_pids, g_pids = rng.integers(0, 15, nq), rng.integers(0, 15, ng)
    q_cams, g_cams = rng.integers(0, 3, nq), rng.integers(0, 3, ng)
    result = evaluate_rank(dist, q_pids, g_pids, q_cams, g_cams, max_rank=10)
    want_ap, want_r1, want_inp = [], [], []
    for i in range(nq):
        keep = ~((g_pids == q_pids[i]) & (g_cams == q_cams[i]))
        order = np.argsort(dist[i][keep])
        ranked = (g_pids[keep] == q_pids[i])[order]
        if ranked.any():
            want_ap.append(_independent_ap(ranked))
            want_r1.append(float(ranked[0]))
            want_inp.append(ranked.sum() / (np.flatnonzero(ranked)[-1] + 1))
    np.testing.assert_allclose(result.all_ap, want_ap, rtol=1e-12)
    np.testing.assert_allclose(result.all_inp, want_inp, rtol=1e-12)
    assert result.rank1 == pytest.approx(np.mean(want_r1))


class TestDeciles:
    def test_bins_partition_the_sorted_queries(self, dm):
        occ = np.random.default_rng(1).random(37)
        bins = results_by_decile(dm["distmat"], *_labels(dm), occ)
        assert [b.index for b in bins] == list(range(10))
        assert [b.num_queries for b in bins] == [4] * 7 + [3] * 3
        assert sum(b.num_valid_queries for b in bins) == 36
        assert all(a.occ_level_max <= b.occ_level_min for a, b in zip(bins, bins[1:]))
        overall = evaluate_rank(dm["distmat"], *_labels(dm), protocol="no_filter")
        order = np.argsort(occ, kind="stable")[:4]
        valid = order[overall.valid_query_mask[order]]
        ap = dict(zip(np.flatnonzero(overall.valid_query_mask), overall.all_ap))
        assert bins[0].mAP == pytest.approx(np.mean([ap[i] for i in valid]))

    def test_hand_case(self):
        occ = np.array([0.9, 0.1])
        bins = results_by_decile(DIST, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, occ, num_bins=2)
        assert (bins[0].mAP, bins[0].rank1, bins[0].occ_level_min) == (1.0, 1.0, 0.1)
        assert bins[1].mAP == pytest.approx(7 / 12) and bins[1].rank1 == 0.0

    def test_bin_without_valid_query_is_nan(self):
        bins = results_by_decile(
            DIST, np.array([1, 9]), G_PIDS, Q_CAMS, G_CAMS, np.array([0.0, 1.0]), num_bins=2
        )
        assert bins[1].num_valid_queries == 0 and np.isnan(bins[1].mAP)

    def test_errors(self):
        with pytest.raises(KPRError, match="num_bins"):
            results_by_decile(DIST, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, np.zeros(2), num_bins=3)
        with pytest.raises(KPRError, match="occ_levels"):
            results_by_decile(DIST, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, np.zeros(3))


class TestSSMD:
    def test_hand_case(self):
        dist = np.array([[1.0, 3.0], [2.0, 5.0]])
        got = ssmd(dist, np.array([1, 2]), np.array([1, 3]))
        # positives {1}, negatives {3, 2, 5}: mean 10/3, population variance 14/9
        assert got.pos_mean == 1.0 and got.pos_std == 0.0
        assert got.neg_mean == pytest.approx(10 / 3)
        assert got.ssmd == pytest.approx((10 / 3 - 1) / (14 / 9))

    def test_needs_both_kinds_of_pairs(self):
        with pytest.raises(KPRError, match="same-identity and different-identity"):
            ssmd(np.ones((1, 2)), np.array([1]), np.array([1, 1]))
