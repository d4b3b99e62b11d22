import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from kpr.errors import KPRError
from kpr.tracking.matching import box_iou, match


def test_gate_is_strict():
    a = match([[0.2, 0.1999]], gate=0.2)
    assert a.pairs == ((0, 1),)
    assert a.unmatched_detections == (0,)
    assert match([[0.2]], gate=0.2).pairs == ()


def test_minimum_total_distance():
    d = [[0.10, 0.05, 0.90], [0.02, 0.15, 0.90], [0.90, 0.90, 0.01]]
    a = match(d, gate=0.2)
    assert a.pairs == ((0, 1), (1, 0), (2, 2))
    assert a.unmatched_tracks == () and a.unmatched_detections == ()


def test_pair_above_gate_is_left_unmatched():
    a = match([[0.05, 0.9], [0.5, 0.3]], gate=0.2)
    assert a.pairs == ((0, 0),)
    assert a.unmatched_tracks == (1,)
    assert a.unmatched_detections == (1,)


def test_more_pairs_beat_a_smaller_total():
    # (0,0) alone costs 0.01; (0,1) + (1,0) cost 0.3 but match both tracks.
    a = match([[0.01, 0.15], [0.15, 0.95]], gate=0.2)
    assert a.pairs == ((0, 1), (1, 0))


def test_ties_go_to_the_lowest_indices():
    assert match([[0.1], [0.1], [0.1]], gate=0.2).pairs == ((0, 0),)
    assert match([[0.1, 0.1, 0.1]], gate=0.2).pairs == ((0, 0),)
    assert match(np.full((3, 3), 0.1), gate=0.2).pairs == ((0, 0), (1, 1), (2, 2))


def test_empty_sides():
    a = match(np.zeros((0, 3)), gate=0.2)
    assert a.pairs == () and a.unmatched_detections == (0, 1, 2)
    b = match(np.zeros((2, 0)), gate=0.2)
    assert b.pairs == () and b.unmatched_tracks == (0, 1)


def test_allowed_mask_and_bad_input():
    a = match([[0.05, 0.1]], gate=0.2, allowed=[[False, True]])
    assert a.pairs == ((0, 1),)
    with pytest.raises(KPRError, match="NaN"):
        match([[np.nan]], gate=0.2)
    with pytest.raises(KPRError, match=r"\[T, D\]"):
        match([0.1, 0.2], gate=0.2)
    with pytest.raises(KPRError, match="allowed has shape"):
        match([[0.1]], gate=0.2, allowed=[[True, True]])


def _brute_force(d: np.ndarray, gate: float) -> tuple[int, float]:
    """(most pairs, smallest total) over every partial one-to-one assignment below the gate."""
    t, n = d.shape
    best = (0, 0.0)
    for k in range(1, min(t, n) + 1):
        for rows in itertools.combinations(range(t), k):
            for cols in itertools.permutations(range(n), k):
                costs = [d[r, c] for r, c in zip(rows, cols)]
                if all(c < gate for c in costs):
                    cand = (k, float(sum(costs)))
                    if cand[0] > best[0] or (cand[0] == best[0] and cand[1] < best[1]):
                        best = cand
    return best


@settings(max_examples=60, deadline=None)
@given(
    arrays(
        np.float64,
        st.tuples(st.integers(0, 4), st.integers(0, 4)),
        elements=st.floats(0.0, 1.0, allow_nan=False),
    )
)
def test_matches_brute_force(d):
    gate = 0.4
    a = match(d, gate)
    assert all(d[t, c] < gate for t, c in a.pairs)
    assert sorted([t for t, _ in a.pairs] + list(a.unmatched_tracks)) == list(range(d.shape[0]))
    assert sorted([c for _, c in a.pairs] + list(a.unmatched_detections)) == list(range(d.shape[1]))
    count, total = _brute_force(d, gate)
    assert len(a.pairs) == count
    assert sum(d[t, c] for t, c in a.pairs) == pytest.approx(total, abs=1e-9)


def test_box_iou_known_values():
    iou = box_iou([[0, 0, 2, 2]], [[1, 1, 3, 3], [0, 0, 2, 2], [5, 5, 6, 6], [0, 0, 0, 0]])
    np.testing.assert_allclose(iou, [[1 / 7, 1.0, 0.0, 0.0]])
