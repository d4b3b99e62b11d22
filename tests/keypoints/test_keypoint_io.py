from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from kpr.errors import KeypointFormatError
from kpr.keypoints import (
    Skeletons,
    parse_keypoints_json,
    read_keypoints_file,
    validate_keypoints,
    write_keypoints_file,
)


def skeleton(seed: float) -> np.ndarray:
    kps = np.zeros((17, 3))
    kps[:, 0] = seed + np.arange(17)
    kps[:, 1] = 2 * seed + np.arange(17) / 4
    kps[:, 2] = 1.0
    return kps


def entry(kps: np.ndarray, flat: bool = False, **extra: object) -> dict:
    points = kps.reshape(-1).tolist() if flat else kps.tolist()
    return {"keypoints": points, **extra}


def write(tmp_path, content: str, name: str = "x.json"):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return path


def test_is_target_selects_the_target():
    a, b, c = skeleton(1), skeleton(2), skeleton(3)
    obj = [entry(a, is_target=False), entry(b, is_target=True), entry(c, is_target=False)]
    s = parse_keypoints_json(obj)
    np.testing.assert_array_equal(s.target, b)
    np.testing.assert_array_equal(s.negatives, np.stack([a, c]))
    assert s.target.dtype == np.float64 and s.num_negatives == 2


def test_two_targets_are_refused():
    """docs/dataset_format.md: exactly one skeleton is the target (the official reader silently
    took the last one)."""
    a, b, c = skeleton(1), skeleton(2), skeleton(3)
    with pytest.raises(
        KeypointFormatError,
        match=r"x.json: field 'is_target': exactly one .* got 2 of 3 \(skeletons \[0, 2\]\)",
    ):
        parse_keypoints_json(
            [entry(a, is_target=True), entry(b), entry(c, is_target=True)], source="x.json"
        )


def test_without_is_target_the_first_is_the_target():
    a, b = skeleton(1), skeleton(2)
    s = parse_keypoints_json([entry(a), entry(b, flat=True)])
    np.testing.assert_array_equal(s.target, a)
    np.testing.assert_array_equal(s.negatives, b[None])


def test_single_dict_is_one_target():
    s = parse_keypoints_json(entry(skeleton(4), flat=True))
    np.testing.assert_array_equal(s.target, skeleton(4))
    assert s.negatives.shape == (0, 17, 3)


@pytest.mark.parametrize("obj", [None, []])
def test_no_keypoints(obj):
    s = parse_keypoints_json(obj)
    np.testing.assert_array_equal(s.target, np.zeros((17, 3)))
    assert s.negatives.shape == (0, 17, 3) and s.negatives.dtype == np.float64


def test_pifpaf_predictions_layout(tmp_path):
    a, b = skeleton(1), skeleton(5)
    preds = [
        entry(a, flat=True, bbox=[0.0, 1.0, 20.0, 40.0], score=0.8, category_id=1),
        entry(b, flat=True, bbox=[3.0, 1.0, 20.0, 40.0], score=0.6, category_id=1),
    ]
    s = read_keypoints_file(write(tmp_path, json.dumps(preds), "img.jpg.predictions.json"))
    np.testing.assert_array_equal(s.target, a)
    np.testing.assert_array_equal(s.negatives, b[None])


def test_integer_coordinates_are_accepted():
    kps = [[j, 2 * j, 1] for j in range(17)]
    target = parse_keypoints_json([{"keypoints": kps}]).target
    assert target.dtype == np.float64
    np.testing.assert_array_equal(target, np.array(kps, dtype=np.float64))


def test_skeletons_is_frozen():
    s = Skeletons.empty()
    with pytest.raises(AttributeError):
        s.target = np.ones((17, 3))  # type: ignore[misc]


def nested_with(point: int, value: str) -> str:
    points = [json.dumps(p) for p in skeleton(1).tolist()]
    points[point] = value
    return '[{"keypoints": [' + ", ".join(points) + '], "is_target": true}]'


GOOD = json.dumps(entry(skeleton(1)))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('[{"keypoints": [1, 2, 3]', r"malformed JSON at line 1 column \d+"),
        ("", "malformed JSON at line 1 column 1"),
        (json.dumps([entry(skeleton(1)[:16])]),
         r"skeleton 0 field 'keypoints': expected 17×3 or 51 numbers, got 16 points"),
        (json.dumps([entry(skeleton(1)), {"keypoints": list(range(48))}]),
         r"skeleton 1 field 'keypoints': expected 17×3 or 51 numbers, got 48$"),
        (json.dumps([{"keypoints": []}]), r"skeleton 0 field 'keypoints': .* got 0$"),
        (nested_with(3, "[1.0, 2.0]"),
         r"skeleton 0 field 'keypoints': point 3 \(left_ear\) has 2 values, expected 3"),
        (nested_with(9, "[NaN, 2.0, 1.0]"),
         r"skeleton 0 field 'keypoints': point 9 \(left_wrist\) has a non-finite value"),
        (nested_with(0, "[1.0, Infinity, 1.0]"),
         r"skeleton 0 field 'keypoints': point 0 \(nose\) has a non-finite value"),
        (nested_with(16, "[1.0, 2.0, NaN]"), r"point 16 \(right_ankle\) has a non-finite value"),
        (nested_with(12, "[1.0, 2.0, 1e999]"), r"point 12 \(right_hip\) has a non-finite value"),
        (nested_with(5, "[1.0, 2.0, -0.5]"),
         r"skeleton 0 field 'keypoints': point 5 \(left_shoulder\) confidence is not in \[0, 1\]"),
        (nested_with(2, '[1.0, "2.0", 1.0]'),
         r"field 'keypoints': point 2 \(right_eye\) has a non-numeric value '2.0'"),
        (nested_with(7, "[1.0, 2.0, true]"),
         r"field 'keypoints': point 7 \(left_elbow\) has a non-numeric value True"),
        (nested_with(7, "[1.0, 2.0, null]"),
         r"point 7 \(left_elbow\) has a non-numeric value None"),
        (json.dumps([entry(skeleton(1), is_target=1)]),
         r"skeleton 0 field 'is_target': expected true or false, got 1"),
        (json.dumps([entry(skeleton(1)), entry(skeleton(2), is_target="yes")]),
         r"skeleton 1 field 'is_target': expected true or false, got 'yes'"),
        (json.dumps([entry(skeleton(1), is_target=None)]),
         r"skeleton 0 field 'is_target': expected true or false, got None"),
        (json.dumps([entry(skeleton(1), is_target=False), entry(skeleton(2), is_target=False)]),
         r"field 'is_target': exactly one skeleton must be true, got 0 of 2"),
        (json.dumps([entry(skeleton(1)), entry(skeleton(2), is_target=False)]),
         r"field 'is_target': exactly one skeleton must be true, got 0"),
        (json.dumps([GOOD, 3]), r"skeleton 0: expected an object, got str"),
        (json.dumps([{"kps": []}]), r"skeleton 0: missing field 'keypoints'"),
        (json.dumps([{"keypoints": "1 2 3"}]),
         r"skeleton 0 field 'keypoints': expected a list of 17×3 or 51 numbers, got str"),
        ("42", r"expected a list of skeleton objects, got int"),
    ],
)  # fmt: skip
def test_malformed_files_name_file_and_field(tmp_path, content, message):
    path = write(tmp_path, content, "bad_kps.json")
    with pytest.raises(KeypointFormatError, match=message) as info:
        read_keypoints_file(path)
    assert str(info.value).startswith(f"{path}: ")


def test_missing_and_undecodable_files(tmp_path):
    with pytest.raises(KeypointFormatError, match="nope.json: cannot read keypoints file"):
        read_keypoints_file(tmp_path / "nope.json")
    path = tmp_path / "latin.json"
    path.write_bytes(b"\xff\xfe[]")
    with pytest.raises(KeypointFormatError, match="latin.json: cannot read keypoints file"):
        read_keypoints_file(path)


def test_parse_uses_source_name():
    with pytest.raises(KeypointFormatError, match=r"^sample 3: skeleton 0 field 'keypoints'"):
        parse_keypoints_json([{"keypoints": [1.0]}], source="sample 3")


def test_validate_keypoints_shapes_and_frame():
    kps = skeleton(1)
    kps[0] = [-50.0, 1e6, 1.0]  # far outside any frame: allowed, the prompt builder ignores it
    out = validate_keypoints(kps.tolist(), "kps")
    assert out.dtype == np.float64 and out.shape == (17, 3)
    assert validate_keypoints(np.zeros((0, 17, 3), np.float32), "negs").shape == (0, 17, 3)
    assert validate_keypoints(np.ones((2, 17, 3), int), "negs").dtype == np.float64


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (np.zeros((16, 3)), r"^my_kps: expected shape \[17, 3\] or \[M, 17, 3\], got \[16, 3\]"),
        (np.zeros(51), r"^my_kps: expected shape .* got \[51\]"),
        (np.zeros((1, 1, 17, 3)), r"^my_kps: expected shape .* got \[1, 1, 17, 3\]"),
        (np.full((17, 3), np.nan), r"^my_kps: point 0 \(nose\) has a non-finite value"),
        (np.array([[[0.0, 0.0, 0.0]] * 17, [[1.0, np.inf, 1.0]] * 17]),
         r"^my_kps: skeleton 1 point 0 \(nose\) has a non-finite value"),
        (np.array([[1.0, 1.0, 1.0]] * 16 + [[1.0, 1.0, -1.0]]),
         r"^my_kps: point 16 \(right_ankle\) confidence is not in \[0, 1\]"),
        ([["1", "2", "3"]] * 17, r"^my_kps: not a numeric keypoint array \(dtype <U1\)"),
        (np.ones((17, 3), bool), r"^my_kps: not a numeric keypoint array \(dtype bool\)"),
        ([[1, 2, 3]] * 16 + [[1, 2]], r"^my_kps: not a rectangular keypoint array"),
    ],
)  # fmt: skip
def test_validate_keypoints_errors(value, message):
    with pytest.raises(KeypointFormatError, match=message):
        validate_keypoints(value, "my_kps")


skeleton_arrays = arrays(np.float64, (17, 3), elements=st.floats(-1e4, 1e4)).map(
    lambda a: np.concatenate([a[:, :2], np.abs(a[:, 2:]) % 1.0], axis=1)
)


def test_confidence_above_one_is_refused_naming_the_file(tmp_path):
    kps = skeleton(1)
    kps[3, 2] = 5.0
    path = write(tmp_path, json.dumps([entry(kps, is_target=True)]), "five.json")
    with pytest.raises(
        KeypointFormatError,
        match=r"five.json: skeleton 0 field 'keypoints': point 3 \(left_ear\) "
        r"confidence is not in \[0, 1\]: \(4.0, 2.75, 5.0\)",
    ):
        read_keypoints_file(path)


@settings(max_examples=25, deadline=None)
@given(target=skeleton_arrays, negatives=st.lists(skeleton_arrays, max_size=3))
def test_write_read_round_trip(tmp_path_factory, target, negatives):
    path = tmp_path_factory.mktemp("rt") / "kps.json"
    negs = np.stack(negatives) if negatives else np.zeros((0, 17, 3))
    write_keypoints_file(path, target, negs)
    s = read_keypoints_file(path)
    np.testing.assert_array_equal(s.target, target)
    np.testing.assert_array_equal(s.negatives, negs)
    assert [p.name for p in path.parent.iterdir()] == ["kps.json"]
    layout = json.loads(path.read_text())
    assert [e["is_target"] for e in layout] == [True] + [False] * len(negatives)
    assert all(len(e["keypoints"]) == 17 and len(e["keypoints"][0]) == 3 for e in layout)


def test_write_without_negatives(tmp_path):
    path = tmp_path / "sub" / "kps.json"
    write_keypoints_file(path, skeleton(1))
    s = read_keypoints_file(path)
    np.testing.assert_array_equal(s.target, skeleton(1))
    assert s.num_negatives == 0


def test_write_rejects_bad_input_and_leaves_nothing(tmp_path):
    path = tmp_path / "kps.json"
    bad = skeleton(1)
    bad[4, 0] = np.nan
    with pytest.raises(KeypointFormatError, match=r"kps.json: target: point 4 \(right_ear\)"):
        write_keypoints_file(path, bad)
    with pytest.raises(KeypointFormatError, match=r"kps.json: target: expected shape \[17, 3\]"):
        write_keypoints_file(path, np.zeros((2, 17, 3)))
    with pytest.raises(KeypointFormatError, match=r"kps.json: negatives: skeleton 0 point 4"):
        write_keypoints_file(path, skeleton(1), bad[None])
    assert list(tmp_path.iterdir()) == []
