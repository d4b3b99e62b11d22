"""The part-based distance against the official fixture (tests/fixtures/distance_metrics)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from kpr.compat.retrieval import official_distance
from kpr.retrieval import body_part_distance, part_distance

FIXTURE_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "distance_metrics"
ATOL = 1e-4


@pytest.fixture(scope="module")
def dm() -> dict[str, np.ndarray]:
    with np.load(FIXTURE_DIR / "distance_metrics_seed0.npz") as archive:
        return {key: archive[key] for key in archive.files}


@pytest.fixture(scope="module")
def summary() -> dict:
    return json.loads((FIXTURE_DIR / "distance_metrics_seed0.json").read_text())


# fixture key -> (query features, gallery features, query vis, gallery vis, keyword arguments)
COMBINED_CASES = {
    "distmat": ("qf", "gf", "q_visibility", "g_visibility", {}),
    "distmat_cosine": ("qf", "gf", "q_visibility", "g_visibility", {"metric": "cosine"}),
    "distmat_continuous_vis": (
        "qf",
        "gf",
        "q_visibility_continuous",
        "g_visibility_continuous",
        {},
    ),
    "distmat_no_vis": ("qf", "gf", None, None, {}),
    "distmat_max": ("qf", "gf", "q_visibility", "g_visibility", {"combine": "max"}),
    "distmat_with_invalid_pairs": (
        "qf",
        "gf",
        "q_visibility_with_invalid",
        "g_visibility_with_invalid",
        {},
    ),
    "distmat_unnormalized_features": ("qf_raw", "gf_raw", "q_visibility", "g_visibility", {}),
}

BODY_PART_CASES = {
    "body_part_distmat": ("q_visibility", "g_visibility", {}),
    "body_part_distmat_cosine": ("q_visibility", "g_visibility", {"metric": "cosine"}),
    "body_part_distmat_continuous_vis": (
        "q_visibility_continuous",
        "g_visibility_continuous",
        {},
    ),
    "body_part_distmat_with_invalid_pairs": (
        "q_visibility_with_invalid",
        "g_visibility_with_invalid",
        {},
    ),
}


def _optional(dm: dict[str, np.ndarray], key: str | None) -> np.ndarray | None:
    return None if key is None else dm[key]


@pytest.mark.parametrize("key", sorted(COMBINED_CASES))
@pytest.mark.parametrize("chunk_size", [1024, 17])
def test_combined_distance_matches_fixture(dm, key, chunk_size):
    qf, gf, qv, gv, kwargs = COMBINED_CASES[key]
    got = part_distance(
        dm[qf],
        dm[gf],
        _optional(dm, qv),
        _optional(dm, gv),
        chunk_size=chunk_size,
        query_chunk_size=11,
        **kwargs,
    )
    assert got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), dm[key], rtol=0, atol=ATOL)


@pytest.mark.parametrize("key", sorted(BODY_PART_CASES))
def test_body_part_distance_matches_fixture(dm, key):
    qv, gv, kwargs = BODY_PART_CASES[key]
    got = body_part_distance(dm["qf"], dm["gf"], dm[qv], dm[gv], **kwargs)
    np.testing.assert_allclose(got.numpy(), dm[key], rtol=0, atol=ATOL)


def test_normalize_flag_reproduces_engine_normalisation(dm):
    got = part_distance(
        dm["qf_raw"], dm["gf_raw"], dm["q_visibility"], dm["g_visibility"], normalize=True
    )
    np.testing.assert_allclose(got.numpy(), dm["distmat"], rtol=0, atol=ATOL)


def test_invalid_pairs_get_max_of_part_matrix_plus_one(dm, summary):
    qv, gv = dm["q_visibility_with_invalid"], dm["g_visibility_with_invalid"]
    no_valid_slot = (qv.astype(int) @ gv.T.astype(int)) == 0
    assert no_valid_slot.sum() > 0
    got = part_distance(dm["qf"], dm["gf"], qv, gv, chunk_size=5).numpy()
    parts = body_part_distance(dm["qf"], dm["gf"], qv, gv).numpy()
    sentinel = summary["invalid_pairs_value"]
    np.testing.assert_allclose(got[no_valid_slot], sentinel, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(np.unique(got[no_valid_slot]), [parts.max()])
    assert got[~no_valid_slot].max() < sentinel - 1


def test_official_distance_is_the_default(dm):
    got = official_distance(dm["qf"], dm["gf"], dm["q_visibility"], dm["g_visibility"])
    assert isinstance(got, np.ndarray) and got.shape == (37, 211)
    np.testing.assert_allclose(got, dm["distmat"], rtol=0, atol=ATOL)
