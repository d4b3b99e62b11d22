from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kpr.errors import ConfigError, KeypointFormatError, PromptError
from kpr.keypoints import (
    build_prompt,
    empty_prompt,
    gaussian_kernel,
    kernel_radius,
    keypoints_in_frame,
    prompt_channel_names,
    prompt_grouping,
    read_keypoints_file,
    rescale_keypoints,
    target_grouping,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "prompts"
CASES = ("case1", "case2")
GROUPINGS = ("cck8", "cck6")


@pytest.fixture(scope="module", params=CASES)
def case(request):
    with np.load(FIXTURES / f"{request.param}.npz") as data:
        return {k: data[k] for k in data.files}


def sizes(case) -> tuple[tuple[int, int], tuple[int, int]]:
    return tuple(case["image_size_hw"].tolist()), tuple(case["orig_image_hw"].tolist())


@pytest.mark.parametrize("name", GROUPINGS)
def test_fixture_from_arrays(case, name):
    out_hw, orig_hw = sizes(case)
    prompt = build_prompt(case["target_kps"], case["negative_kps"], name, out_hw, orig_hw)
    expected = case[f"{name}_prompt_masks"]
    assert prompt.dtype == np.float64 and prompt.shape == expected.shape
    # Not bit-exact: the reference's exp (numpy 1.26) is off by 1 ulp on some kernel taps.
    np.testing.assert_allclose(prompt, expected, rtol=0, atol=1e-12)
    assert prompt_channel_names(prompt_grouping(name)) == tuple(case[f"{name}_channel_names"])


@pytest.mark.parametrize("name", GROUPINGS)
def test_fixture_from_keypoints_file(case, name, tmp_path):
    path = tmp_path / "sample.jpg_keypoints.json"
    path.write_text(str(case["keypoints_json"]), encoding="utf-8")
    skeletons = read_keypoints_file(path)
    np.testing.assert_array_equal(skeletons.target, case["target_kps"])
    np.testing.assert_array_equal(skeletons.negatives, case["negative_kps"])
    out_hw, orig_hw = sizes(case)
    prompt = build_prompt(skeletons.target, skeletons.negatives, name, out_hw, orig_hw)
    np.testing.assert_allclose(prompt, case[f"{name}_prompt_masks"], rtol=0, atol=1e-12)


def test_fixture_rescaled_keypoints(case):
    out_hw, orig_hw = sizes(case)
    target, negs = case["target_kps"], case["negative_kps"]
    grouped = case["cck8_keypoints_xyc_grouped"][:, :3]
    grouped_negs = case["cck8_negative_keypoints_xyc_grouped"][: len(negs), :, :3]
    np.testing.assert_array_equal(rescale_keypoints(target, orig_hw, out_hw), grouped)
    np.testing.assert_array_equal(rescale_keypoints(negs, orig_hw, out_hw), grouped_negs)


def test_fixture_documented_empty_channels():
    with np.load(FIXTURES / "case2.npz") as d:
        p8 = build_prompt(d["target_kps"], d["negative_kps"], "cck8", (384, 128), (259, 101))
    names = prompt_channel_names(prompt_grouping("cck8"))
    empty = [n for n, ch in zip(names, p8) if not ch.any()]
    assert empty == ["left_arm", "left_feet"]


def test_gaussian_kernel():
    k = gaussian_kernel(11)
    assert k.shape == (23, 23) and k[11, 11] == 1.0 and k.max() == 1.0
    np.testing.assert_array_equal(k, k.T)
    np.testing.assert_array_equal(k, k[::-1, ::-1])
    assert k[11, 0] == pytest.approx(np.exp(-(11**2) / (2 * 5.75**2)), abs=1e-15)
    assert k[11, 0] == pytest.approx(0.16, abs=5e-3)
    assert gaussian_kernel(11) is k and not k.flags.writeable
    assert kernel_radius(128) == 11 and kernel_radius(64) == 5 and kernel_radius(10) == 0
    np.testing.assert_array_equal(gaussian_kernel(0), [[1.0]])


@pytest.mark.parametrize("radius", [0, 1, 2, 5, 11, 23, 34])
def test_gaussian_kernel_is_bit_identical_to_scipys_window(radius):
    from scipy.signal.windows import gaussian

    side = 2 * radius + 1
    window = gaussian(side, std=side / 4)
    np.testing.assert_array_equal(gaussian_kernel(radius), np.outer(window, window))


def test_drawing_prompts_does_not_import_scipy_signal():
    import subprocess
    import sys

    code = (
        "import sys; import kpr.keypoints.prompts as p; import kpr.engine.trainer; "
        "p.build_prompt([[10, 10, 1]] * 17, None, 'cck8', (64, 32)); "
        "print('scipy.signal' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --- property tests ------------------------------------------------------------------------------

hw = st.tuples(st.integers(4, 48), st.integers(4, 48))
confidences = st.sampled_from([0.0, 0.12, 0.3, 0.30000001, 0.5, 0.93, 1.0])


@st.composite
def scene(draw, max_negatives: int = 3):
    """(target [17,3], negatives [M,17,3], orig_hw, out_hw); some points fall out of frame."""
    orig_hw, out_hw = draw(hw), draw(hw)
    h0, w0 = orig_hw

    def skel() -> np.ndarray:
        xs = draw(st.lists(st.floats(-5, w0 + 5), min_size=17, max_size=17))
        ys = draw(st.lists(st.floats(-5, h0 + 5), min_size=17, max_size=17))
        cs = draw(st.lists(confidences, min_size=17, max_size=17))
        return np.stack([xs, ys, cs], axis=1)

    negatives = [skel() for _ in range(draw(st.integers(0, max_negatives)))]
    return skel(), np.stack(negatives) if negatives else np.zeros((0, 17, 3)), orig_hw, out_hw


grouping_names = st.sampled_from(["cck8", "cck6", "cck4", "cck3", "cck2", "cck1"])
fast = settings(max_examples=40, deadline=None)


@fast
@given(s=scene(), name=grouping_names)
def test_prompt_range_and_background(s, name):
    target, negatives, orig_hw, out_hw = s
    p = build_prompt(target, negatives, name, out_hw, orig_hw)
    assert p.shape == (prompt_grouping(name).num_parts + 2, *out_hw) and p.dtype == np.float64
    assert p.min() >= 0.0 and p.max() <= 1.0
    np.testing.assert_array_equal(p[0], np.clip(1.0 - p[1:].sum(axis=0), 0.0, 1.0))


@fast
@given(s=scene(), name=grouping_names)
def test_out_of_frame_and_low_confidence_points_are_ignored(s, name):
    target, negatives, orig_hw, out_hw = s
    clean_t, clean_n = target.copy(), negatives.copy()
    for kps in (clean_t, clean_n):
        ignored = (kps[..., 2] <= 0.3) | ~keypoints_in_frame(kps, orig_hw)
        kps[ignored] = 0.0
    full = build_prompt(target, negatives, name, out_hw, orig_hw)
    np.testing.assert_array_equal(full, build_prompt(clean_t, clean_n, name, out_hw, orig_hw))


@fast
@given(s=scene(), name=grouping_names)
def test_only_ignored_points_give_the_empty_prompt(s, name):
    target, negatives, orig_hw, out_hw = s
    for kps in (target, negatives):
        drawable = kps[..., 2] > 0.3
        # Push every drawable point just outside the frame: left of it or below it, alternately.
        kps[drawable & (np.arange(17) % 2 == 0), 0] = -0.5
        kps[drawable & (np.arange(17) % 2 == 1), 1] = orig_hw[0]
    expected = empty_prompt(name, out_hw)
    np.testing.assert_array_equal(build_prompt(target, negatives, name, out_hw, orig_hw), expected)
    np.testing.assert_array_equal(build_prompt(None, None, name, out_hw), expected)
    np.testing.assert_array_equal(build_prompt(np.zeros((17, 3)), None, name, out_hw), expected)


@fast
@given(
    out_hw=hw,
    orig_hw=hw,
    k=st.integers(0, 16),
    fx=st.floats(0, 1, exclude_max=True),
    fy=st.floats(0, 1, exclude_max=True),
    name=grouping_names,
)
def test_single_point_peak(out_hw, orig_hw, k, fx, fy, name):
    (h, w), (h0, w0) = out_hw, orig_hw
    target = np.zeros((17, 3))
    target[k] = [fx * w0, fy * h0, 1.0]
    p = build_prompt(target, None, name, out_hw, orig_hw)
    x, y = rescale_keypoints(target[k], orig_hw, out_hw)[:2]
    g = prompt_grouping(name)
    # fx * w0 can round up to w0 (and x' to w), which puts the point out of frame.
    inside = target[k, 0] < w0 and target[k, 1] < h0 and x < w and y < h
    for part, idx in enumerate(g.members):
        channel = p[2 + part]
        if k in idx and inside:
            assert channel.max() == 1.0 and channel[int(y), int(x)] == 1.0
            assert np.count_nonzero(channel == 1.0) == 1
        else:
            assert not channel.any()
    assert not p[1].any()


@fast
@given(s=scene(max_negatives=4), data=st.data())
def test_negative_order_does_not_matter(s, data):
    target, negatives, orig_hw, out_hw = s
    order = data.draw(st.permutations(range(len(negatives))))
    a = build_prompt(target, negatives, "cck8", out_hw, orig_hw)
    b = build_prompt(target, negatives[list(order)], "cck8", out_hw, orig_hw)
    np.testing.assert_array_equal(a, b)


@fast
@given(s=scene(max_negatives=2))
def test_negatives_fill_one_channel_and_target_the_parts(s):
    target, negatives, orig_hw, out_hw = s
    only_target = build_prompt(target, None, "cck8", out_hw, orig_hw)
    only_negs = build_prompt(None, negatives, "cck8", out_hw, orig_hw)
    both = build_prompt(target, negatives, "cck8", out_hw, orig_hw)
    assert not only_target[1].any() and not only_negs[2:].any()
    np.testing.assert_array_equal(both[1], only_negs[1])
    np.testing.assert_array_equal(both[2:], only_target[2:])
    # A negative skeleton drawn as the target yields the max over its points in cck1's one part.
    if len(negatives) == 1:
        as_target = build_prompt(negatives[0], None, "cck1", out_hw, orig_hw)
        np.testing.assert_array_equal(as_target[2], only_negs[1])


# --- small deterministic checks ------------------------------------------------------------------


def test_hand_placed_point_and_border_crop():
    target = np.zeros((17, 3))
    target[0] = [0.4, 0.9, 1.0]  # nose, truncated to (0, 0): only the kernel's lower-right quarter
    target[9] = [63.99, 10.5, 0.31]  # left wrist at the right border
    p = build_prompt(target, None, "cck8", (32, 64))
    k = gaussian_kernel(5)
    np.testing.assert_array_equal(p[2, :6, :6], k[5:, 5:])
    assert not p[2, 6:].any() and not p[2, :, 6:].any()
    np.testing.assert_array_equal(p[3, 5:16, 58:], k[:, :6])
    assert p[3, 10, 63] == 1.0


def test_threshold_is_strict():
    target = np.zeros((17, 3))
    target[0] = [5.0, 5.0, 0.3]
    assert not build_prompt(target, None, "cck8", (16, 16))[2:].any()
    target[0, 2] = 0.3000001
    assert build_prompt(target, None, "cck8", (16, 16))[2].max() == 1.0


def test_points_outside_the_original_frame_are_ignored():
    target = np.zeros((17, 3))
    target[0] = [100.0, 5.0, 1.0]  # x == W0: outside [0, W0) even though it would rescale inside
    assert not build_prompt(target, None, "cck8", (64, 128), (64, 100))[2].any()
    target[0, 0] = 99.99
    assert build_prompt(target, None, "cck8", (64, 128), (64, 100))[2].max() == 1.0


def test_orig_hw_none_means_output_pixels():
    target = np.zeros((17, 3))
    target[5] = [10.0, 20.0, 1.0]
    np.testing.assert_array_equal(
        build_prompt(target, None, "cck6", (40, 30)),
        build_prompt(target, None, "cck6", (40, 30), (40, 30)),
    )


def test_inputs_are_not_modified():
    target = np.ones((17, 3)) * 3
    target[:, 2] = 0.9
    before = target.copy()
    build_prompt(target, target[None], "cck8", (20, 10), (40, 30))
    rescale_keypoints(target, (40, 30), (20, 10))
    np.testing.assert_array_equal(target, before)


def test_empty_prompt():
    p = empty_prompt(prompt_grouping("cck6"), (12, 8))
    assert p.shape == (8, 12, 8) and (p[0] == 1).all() and not p[1:].any()
    no_background = empty_prompt("cck6", (12, 8), with_background=False)
    assert no_background.shape == (7, 12, 8) and not no_background.any()
    neither = empty_prompt("cck6", (12, 8), with_negatives=False, with_background=False)
    assert neither.shape == (6, 12, 8) and not neither.any()


def test_prompt_without_background_drops_channel_0_only():
    target = np.zeros((17, 3))
    target[0] = (5, 6, 1.0)
    negative = np.zeros((1, 17, 3))
    negative[0, 11] = (3, 15, 1.0)
    full = build_prompt(target, negative, "cck6", (20, 10))
    np.testing.assert_array_equal(
        build_prompt(target, negative, "cck6", (20, 10), with_background=False), full[1:]
    )
    np.testing.assert_array_equal(
        build_prompt(
            target, negative, "cck6", (20, 10), with_negatives=False, with_background=False
        ),
        full[2:],
    )
    assert full[1].max() == 1.0 and full[2:].max() == 1.0  # the negative and a part were drawn


def test_keypoints_in_frame():
    pts = np.array([[0, 0, 1], [9.99, 4.99, 0], [10, 0, 1], [0, 5, 1], [-0.01, 1, 1]])
    inside = keypoints_in_frame(pts, (5, 10))
    np.testing.assert_array_equal(inside, [True, True, False, False, False])


def test_errors():
    kps = np.zeros((17, 3))
    with pytest.raises(ConfigError, match="'five_v' groups 36 channels"):
        build_prompt(kps, None, target_grouping("five_v"), (8, 8))
    with pytest.raises(ConfigError, match="unknown prompt grouping 'cck5'"):
        build_prompt(kps, None, "cck5", (8, 8))
    with pytest.raises(PromptError, match=r"out_hw: expected positive \(H, W\), got \(0, 8\)"):
        build_prompt(kps, None, "cck8", (0, 8))
    with pytest.raises(PromptError, match="orig_hw: expected two integers"):
        build_prompt(kps, None, "cck8", (8, 8), (8.5, 8))
    with pytest.raises(KeypointFormatError, match=r"target: expected shape \[17, 3\], got \[1, 17"):
        build_prompt(kps[None], None, "cck8", (8, 8))
    with pytest.raises(KeypointFormatError, match=r"negatives: skeleton 0 point 3 \(left_ear\)"):
        bad = np.zeros((1, 17, 3))
        bad[0, 3, 1] = np.nan
        build_prompt(kps, bad, "cck8", (8, 8))


def test_prompt_without_negative_channel_drops_it_and_ignores_negatives() -> None:
    data = np.load(FIXTURES / "case1.npz")
    full = build_prompt(
        data["target_kps"], data["negative_kps"], "cck8", (256, 128), tuple(data["orig_image_hw"])
    )
    lean = build_prompt(
        data["target_kps"],
        data["negative_kps"],
        "cck8",
        (256, 128),
        tuple(data["orig_image_hw"]),
        with_negatives=False,
    )
    assert lean.shape == (9, 256, 128)
    np.testing.assert_array_equal(lean[1:], full[2:])
    np.testing.assert_allclose(lean[0], np.clip(1.0 - full[2:].sum(axis=0), 0.0, 1.0))
    assert empty_prompt("cck8", (8, 4), with_negatives=False).shape == (9, 8, 4)
