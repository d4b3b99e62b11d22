"""``person_crops``: each person's crop, own keypoints positive, others inside its box negative."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pose_helpers import standing

from kpr.pose import Person, crop_box, person_crops

FRAME = np.arange(200 * 300 * 3, dtype=np.uint32).reshape(200, 300, 3).astype(np.uint8)


def test_two_overlapping_people_prompt_each_other_inside_their_boxes():
    left = Person(standing(cx=100, top=20, height=160), (60, 10, 140, 190), 0.9)
    right = Person(standing(cx=150, top=30, height=160), (110, 20, 190, 195), 0.8)
    far = Person(standing(cx=260, top=20, height=160), (230, 10, 290, 190), 0.7)
    crops = person_crops(FRAME, [left, right, far])
    assert [c.box for c in crops] == [(60, 10, 140, 190), (110, 20, 190, 195), (230, 10, 290, 190)]
    c = crops[0]
    np.testing.assert_array_equal(c.image, FRAME[10:190, 60:140])
    np.testing.assert_allclose(c.target[:, :2], left.keypoints[:, :2] - [60, 10])
    # Only ``right`` reaches into ``left``'s box; only its points inside the box are kept.
    assert c.negatives.shape == (1, 17, 3)
    kept = c.negatives[0, :, 2] > 0
    inside = (right.keypoints[:, 0] >= 60) & (right.keypoints[:, 0] < 140)
    inside &= (right.keypoints[:, 1] >= 10) & (right.keypoints[:, 1] < 190)
    np.testing.assert_array_equal(kept, inside)
    assert 0 < kept.sum() < 17
    np.testing.assert_allclose(c.negatives[0, kept, :2], right.keypoints[kept, :2] - [60, 10])
    assert (c.negatives[0, ~kept] == 0).all()
    assert crops[2].negatives.shape == (0, 17, 3)
    assert crops[2].skeletons.num_negatives == 0


def test_person_cut_by_the_frame_border_is_clipped_and_loses_outside_points():
    person = Person(standing(cx=20, top=120, height=160), (-15.5, 110.2, 60.1, 290), 0.9)
    (crop,) = person_crops(FRAME, [person])
    assert crop.box == (0, 110, 61, 200)
    assert crop.image.shape == (90, 61, 3)
    outside = (person.keypoints[:, 0] < 0) | (person.keypoints[:, 1] >= 200)
    assert (person.keypoints[:, 0] < 0).any() and (person.keypoints[:, 1] >= 200).any()
    assert (crop.target[outside] == 0).all()
    np.testing.assert_allclose(crop.target[~outside, :2], person.keypoints[~outside, :2] - [0, 110])


def test_no_people_and_boxes_outside_the_frame():
    assert person_crops(FRAME, []) == []
    assert crop_box((400, 300, 500, 400), (200, 300)) == (299, 199, 300, 200)
    assert crop_box((-10, -10, -5, -5), (200, 300)) == (0, 0, 1, 1)


boxes = st.tuples(
    st.floats(-50, 320), st.floats(-50, 220), st.floats(1, 200), st.floats(1, 200)
).map(lambda b: (b[0], b[1], b[0] + b[2], b[1] + b[3]))
people = st.lists(
    st.builds(
        lambda cx, top, h, box: Person(standing(cx, top, h), box, 1.0),
        st.floats(-20, 320),
        st.floats(-20, 220),
        st.floats(10, 200),
        boxes,
    ),
    max_size=5,
)


@settings(max_examples=80, deadline=None)
@given(people)
def test_every_prompt_point_lies_in_its_crop_and_maps_back_to_the_frame(people):
    crops = person_crops(FRAME, people)
    assert len(crops) == len(people)
    for i, crop in enumerate(crops):
        x0, y0, x1, y1 = crop.box
        assert 0 <= x0 < x1 <= 300 and 0 <= y0 < y1 <= 200
        assert crop.image.shape == (y1 - y0, x1 - x0, 3)
        for skel in [crop.target, *crop.negatives]:
            shown = skel[:, 2] > 0
            assert (skel[~shown] == 0).all()
            assert ((skel[shown, 0] >= 0) & (skel[shown, 0] < x1 - x0)).all()
            assert ((skel[shown, 1] >= 0) & (skel[shown, 1] < y1 - y0)).all()
        back = crop.target[:, :2] + [x0, y0]
        shown = crop.target[:, 2] > 0
        np.testing.assert_allclose(back[shown], people[i].keypoints[shown, :2])
        others = [p for j, p in enumerate(people) if j != i]
        for negative in crop.negatives:
            shown = negative[:, 2] > 0
            assert shown.any()
            assert any(
                np.allclose(negative[shown, :2] + [x0, y0], o.keypoints[shown, :2]) for o in others
            )


def test_person_rejects_wrong_shapes_and_boxes():
    with pytest.raises(Exception, match=r"\[17, 3\]"):
        Person(np.zeros((16, 3)), (0, 0, 1, 1), 1.0)
    with pytest.raises(Exception, match="x0 <= x1"):
        Person(np.zeros((17, 3)), (5, 0, 1, 1), 1.0)
    with pytest.raises(Exception, match="score"):
        Person(np.zeros((17, 3)), (0, 0, 1, 1), float("nan"))


def test_person_from_keypoints_box_and_score():
    kps = np.zeros((17, 3))
    kps[0] = (10, 20, 0.5)
    kps[16] = (30, 120, 1.0)
    person = Person.from_keypoints(kps, pad=0.1)
    assert person.box == pytest.approx((8, 10, 32, 130))
    assert person.score == pytest.approx(0.75)
    assert not person.keypoints.flags.writeable
