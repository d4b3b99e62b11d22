"""The paper's target rule on hand-made skeleton sets."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pose_helpers import skeleton, standing

from kpr.pose import AMBIGUITY_MARGIN, choose_target, head_point

H, W = 256, 128


def test_no_people_gives_no_target():
    choice = choose_target(np.zeros((0, 17, 3)), (H, W))
    assert choice.index is None and not choice.ambiguous and choice.distances == ()


def test_single_person_is_the_target_whatever_its_position():
    choice = choose_target([standing(cx=10, top=150, height=100)], (H, W))
    assert choice.index == 0 and not choice.ambiguous


def test_head_closest_to_top_centre_wins_over_a_bigger_front_person():
    back = standing(cx=64, top=5, height=200)  # the crop's own person, centred, head at the top
    front = standing(cx=30, top=60, height=250)  # an occluder stepping in lower and to the left
    choice = choose_target([front, back], (H, W))
    assert choice.index == 1 and not choice.ambiguous
    assert choice.distances[1] < choice.distances[0]


def test_exact_tie_keeps_the_first_and_is_ambiguous():
    a = standing(cx=44, top=10, height=200)
    b = standing(cx=84, top=10, height=200)  # mirror image about the vertical centre line
    choice = choose_target([a, b], (H, W))
    assert choice.index == 0 and choice.ambiguous
    assert choice.distances[0] == pytest.approx(choice.distances[1])


def test_heads_within_the_margin_are_ambiguous_and_outside_are_not():
    a = standing(cx=64, top=10, height=200)
    near = standing(cx=64, top=10 + 0.5 * AMBIGUITY_MARGIN * H, height=200)
    far = standing(cx=64, top=10 + 2 * AMBIGUITY_MARGIN * H, height=200)
    assert choose_target([near, a], (H, W)).ambiguous
    verdict = choose_target([far, a], (H, W))
    assert verdict.index == 1 and not verdict.ambiguous


def test_person_cut_by_the_top_border_uses_its_topmost_visible_keypoint():
    headless = standing(cx=64, top=-40, height=300)  # head above the crop: face points invisible
    headless[:5] = 0.0
    assert head_point(headless) == pytest.approx(headless[5:7, :2][np.argmin(headless[5:7, 1])])
    side = standing(cx=115, top=20, height=200)  # head visible but at the right border
    choice = choose_target([side, headless], (H, W))
    assert choice.index == 1


def test_invisible_skeletons_are_never_chosen_over_a_visible_one():
    ghost = standing(cx=64, top=0, height=200, c=0.1)  # all below the 0.3 visibility threshold
    seen = standing(cx=20, top=100, height=150)
    choice = choose_target([ghost, seen], (H, W))
    assert choice.index == 1 and np.isinf(choice.distances[0])
    all_ghosts = choose_target([ghost, ghost], (H, W))
    assert all_ghosts.index == 0 and all_ghosts.ambiguous


def test_head_point_is_the_mean_of_visible_face_keypoints():
    kps = skeleton({0: (10, 20), 1: (14, 18), 5: (0, 100)})
    assert head_point(kps) == pytest.approx([12, 19])
    assert head_point(np.zeros((17, 3))) is None


people = st.lists(
    st.builds(
        standing,
        cx=st.floats(0, W),
        top=st.floats(-50, H),
        height=st.floats(20, 300),
    ),
    min_size=1,
    max_size=5,
)


@settings(max_examples=60, deadline=None)
@given(people, st.randoms(use_true_random=False))
def test_choice_does_not_depend_on_the_order_of_people(skeletons, rnd):
    order = list(range(len(skeletons)))
    rnd.shuffle(order)
    first = choose_target(skeletons, (H, W))
    second = choose_target([skeletons[i] for i in order], (H, W))
    assert first.ambiguous == second.ambiguous
    if not first.ambiguous:
        assert order[second.index] == first.index
    assert min(first.distances) == min(second.distances)


@settings(max_examples=60, deadline=None)
@given(people, st.floats(0.25, 4.0))
def test_choice_does_not_depend_on_the_crop_resolution(skeletons, factor):
    scaled = [s * np.array([factor, factor, 1.0]) for s in skeletons]
    a = choose_target(skeletons, (H, W))
    b = choose_target(scaled, (H * factor, W * factor))
    assert b.distances == pytest.approx(a.distances)
    assert b.index == a.index or a.ambiguous


@settings(max_examples=60, deadline=None)
@given(people)
def test_target_has_the_smallest_distance(skeletons):
    choice = choose_target(skeletons, (H, W))
    assert choice.distances[choice.index] == min(choice.distances)
