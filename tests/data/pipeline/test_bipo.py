from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kpr.data.bipo import (
    MIN_KEYPOINT_ALPHA,
    Occluder,
    OccluderBank,
    apply_bipo,
    silhouette_alpha,
)
from kpr.data.parsing import pixel_labels, target_masks
from kpr.errors import ConfigError, ImageReadError
from kpr.keypoints import build_prompt, keypoints_in_frame

HW = (128, 64)


@pytest.fixture(scope="module")
def bank(train_samples) -> OccluderBank:
    return OccluderBank.from_samples(train_samples, HW, per_id=3, seed=0)


def blob_occluder(pid: int = 7, hw=HW, invisible: tuple[int, ...] = (0, 1, 2)) -> Occluder:
    """A person-sized ellipse with a skeleton inside it; ``invisible`` points are (0, 0, 0)."""
    h, w = hw
    yy, xx = np.mgrid[:h, :w]
    soft = ((yy - h / 2) / (0.4 * h)) ** 2 + ((xx - w / 2) / (0.25 * w)) ** 2 < 1
    alpha = silhouette_alpha(soft.astype(np.float32))
    ys, xs = np.nonzero(alpha > 0)
    y0, x0 = ys.min(), xs.min()
    box = (slice(y0, ys.max() + 1), slice(x0, xs.max() + 1))
    kps = np.stack([np.full(17, w / 2), np.linspace(0.15 * h, 0.85 * h, 17), np.ones(17)], 1)
    kps[list(invisible)] = 0.0
    rgb = np.full((h, w, 3), (200, 10, 10), np.uint8)
    return Occluder(
        pid=pid,
        rgb=rgb[box],
        alpha=alpha[box],
        top_left=(int(y0), int(x0)),
        keypoints=kps,
        frame_hw=hw,
        source=Path("blob.png"),
    )


def random_sample(rng: np.random.Generator, num_negatives: int = 2):
    image = rng.integers(0, 256, (*HW, 3), dtype=np.uint8)
    scores = rng.random((8, *HW)).astype(np.float32)

    def skeleton():
        return np.stack([rng.uniform(0, HW[1], 17), rng.uniform(0, HW[0], 17), np.ones(17)], 1)

    negatives = np.array([skeleton() for _ in range(num_negatives)]).reshape(-1, 17, 3)
    return image, scores, skeleton(), negatives


def test_bank_holds_valid_occluders(bank, train_samples):
    pids = {s.pid for s in train_samples}
    assert set(bank.pids) == pids
    assert all(1 <= len(v) <= 3 for v in bank.by_pid.values())
    for occluders in bank.by_pid.values():
        for occ in occluders:
            assert occ.frame_hw == HW and occ.rgb.shape[:2] == occ.alpha.shape
            assert occ.alpha.min() >= 0 and occ.alpha.max() <= 1 and occ.alpha.max() > 0.99
            kps = occ.keypoints
            hidden = kps[:, 2] == 0
            np.testing.assert_array_equal(kps[hidden], 0.0)
            full = np.zeros(HW, np.float32)
            y0, x0 = occ.top_left
            full[y0 : y0 + occ.alpha.shape[0], x0 : x0 + occ.alpha.shape[1]] = occ.alpha
            vis = kps[~hidden]
            assert (
                full[np.rint(vis[:, 1]).astype(int), np.rint(vis[:, 0]).astype(int)]
                >= MIN_KEYPOINT_ALPHA
            ).all()


def test_bank_is_deterministic_and_errors_are_configurable(train_samples, tmp_path):
    a = OccluderBank.from_samples(train_samples, HW, per_id=2, seed=4)
    b = OccluderBank.from_samples(train_samples, HW, per_id=2, seed=4)

    def sources(bank):
        return [o.source for v in bank.by_pid.values() for o in v]

    assert sources(a) == sources(b)
    broken = [dataclasses.replace(s, image=tmp_path / "missing.png") for s in train_samples[:2]]
    with pytest.raises(ImageReadError, match="missing.png"):
        OccluderBank.from_samples(broken, HW)
    skipped = OccluderBank.from_samples(
        broken + list(train_samples), HW, per_id=50, on_error="skip"
    )
    assert len(skipped.skipped) == 2 and len(skipped) == len(train_samples)
    with pytest.raises(ConfigError):
        OccluderBank.from_samples(train_samples, HW, per_id=0)


def test_bank_without_parsing_uses_keypoint_silhouettes(split_samples):
    samples = split_samples("train", with_parsing=False)[:20]
    bank = OccluderBank.from_samples(samples, HW, per_id=1)
    assert len(bank) > 0 and not bank.skipped


def test_silhouette_keeps_only_the_largest_person():
    soft = np.zeros((60, 40), np.float32)
    soft[5:40, 5:20] = 0.9
    soft[50:55, 30:35] = 0.9
    alpha = silhouette_alpha(soft)
    assert alpha[20, 12] == pytest.approx(1.0) and alpha[52, 32] == 0.0
    assert silhouette_alpha(np.full((8, 8), 0.1, np.float32)) is None


def test_occluded_pixels_become_background_in_target_masks():
    rng = np.random.default_rng(0)
    image, scores, target, negatives = random_sample(rng)
    scores = np.ones_like(scores)
    out = apply_bipo(image, scores, target, negatives, blob_occluder(), rng)
    labels = pixel_labels(target_masks(out.part_scores, HW)).numpy()
    covered = out.alpha > 0.5
    assert covered.sum() > 500
    assert (labels[covered] == 0).all()
    assert (labels[out.alpha == 0] > 0).all()
    blended = out.alpha[..., None] * 200 + (1 - out.alpha[..., None]) * image
    assert np.abs(out.image.astype(float) - blended)[..., 0].max() <= 0.5 + 1e-6


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), num_negatives=st.integers(0, 3))
def test_dropped_keypoints_are_exactly_those_under_the_occluder(seed, num_negatives):
    rng = np.random.default_rng(seed)
    image, scores, target, negatives = random_sample(rng, num_negatives)
    occ = blob_occluder()
    out = apply_bipo(image, scores, target, negatives, occ, rng)
    level = occ.alpha.max() / 10
    for before, after in ((target, out.target), (negatives, out.negatives[:num_negatives])):
        rows = np.clip(np.rint(before[..., 1]), 0, HW[0] - 1).astype(int)
        cols = np.clip(np.rint(before[..., 0]), 0, HW[1] - 1).astype(int)
        under = out.alpha[rows, cols] > level
        np.testing.assert_array_equal(after[..., 2] == 0, under)
        np.testing.assert_array_equal(after[..., :2], before[..., :2])
    assert out.negatives.shape == (num_negatives + 1, 17, 3)


@pytest.mark.parametrize("seed", range(10))
def test_invisible_occluder_points_never_become_negatives(seed):
    rng = np.random.default_rng(seed)
    image, scores, target, _ = random_sample(rng)
    occ = blob_occluder(invisible=(0, 1, 2, 3, 4))
    out = apply_bipo(image, scores, target, np.zeros((0, 17, 3)), occ, rng)
    added = out.negatives[-1]
    np.testing.assert_array_equal(added[:5], 0.0)
    shifted = occ.keypoints[5:, :2] + (added[5:, :2] - occ.keypoints[5:, :2])[0]
    np.testing.assert_allclose(added[5:, :2], shifted)
    inside = keypoints_in_frame(shifted, HW)
    np.testing.assert_array_equal(added[5:, 2] == 1.0, inside)
    # The shifted origin, where the official code drew spurious negatives, stays empty (the
    # visible points lie on the vertical line x = W/2 + dx, far from it).
    dx, dy = (added[5, :2] - occ.keypoints[5, :2]).astype(int)
    prompt = build_prompt(None, out.negatives, "cck8", HW)
    if 0 <= dx < HW[1] and 0 <= dy < HW[0]:
        assert prompt[1, dy, dx] == 0


def test_occluder_placement_range():
    rng = np.random.default_rng(3)
    occ = blob_occluder()
    image, scores, target, negatives = random_sample(rng)
    centres = []
    for _ in range(200):
        out = apply_bipo(image, None, target, negatives, occ, rng)
        added = out.negatives[-1]
        dx, dy = added[5, :2] - occ.keypoints[5, :2]
        centres.append((dx + HW[1] // 2, dy + HW[0] // 2))
        assert out.part_scores is None
    cx, cy = np.array(centres).T
    assert cx.min() >= 0 and cx.max() < HW[1]
    assert cy.min() >= int(0.55 * HW[0]) and cy.max() < int(0.75 * HW[0])


def test_bipo_is_deterministic_with_a_seeded_rng():
    image, scores, target, negatives = random_sample(np.random.default_rng(9))
    occ = blob_occluder()
    a = apply_bipo(image, scores, target, negatives, occ, np.random.default_rng(1))
    b = apply_bipo(image, scores, target, negatives, occ, np.random.default_rng(1))
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.part_scores, b.part_scores)
    np.testing.assert_array_equal(a.negatives, b.negatives)


def test_occluder_size_must_match_the_image():
    image, scores, target, negatives = random_sample(np.random.default_rng(0))
    with pytest.raises(ConfigError, match="occluder"):
        small = blob_occluder(hw=(64, 32))
        apply_bipo(image, scores, target, negatives, small, np.random.default_rng(0))


def test_pick_prefers_other_ids_of_the_batch(bank):
    rng = np.random.default_rng(0)
    pids = list(bank.pids)
    me, batch = pids[0], frozenset(pids[:4])
    chosen = {bank.pick(me, batch, rng).pid for _ in range(200)}
    assert chosen == set(pids[1:4])
    assert bank.pick(me, frozenset({me}), rng).pid != me
    fallback = {bank.pick(me, frozenset(), rng).pid for _ in range(300)}
    assert me not in fallback and len(fallback) > 3


def test_pick_returns_none_when_only_the_sample_identity_exists():
    only = OccluderBank(by_pid={7: (blob_occluder(7),)}, frame_hw=HW)
    assert only.pick(7, {7, 8}, np.random.default_rng(0)) is None
    assert only.pick(3, set(), np.random.default_rng(0)).pid == 7


def test_the_pasted_person_becomes_other_people_in_the_person_mask():
    image, scores, target, negatives = random_sample(np.random.default_rng(4))
    person = np.zeros(HW, np.uint8)
    person[20:110, 16:48] = 1
    person[:12] = 2
    occ = blob_occluder()
    with_mask = apply_bipo(image, scores, target, negatives, occ, np.random.default_rng(2), person)
    plain = apply_bipo(image, scores, target, negatives, occ, np.random.default_rng(2))
    covered = with_mask.alpha > 0.5
    assert covered.any() and (person[covered] == 1).any()
    assert (with_mask.person_mask[covered] == 2).all()
    np.testing.assert_array_equal(with_mask.person_mask[~covered], person[~covered])
    # the mask changes nothing else, and no mask gives none
    np.testing.assert_array_equal(with_mask.image, plain.image)
    np.testing.assert_array_equal(with_mask.negatives, plain.negatives)
    assert plain.person_mask is None
