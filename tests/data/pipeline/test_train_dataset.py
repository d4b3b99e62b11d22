from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from kpr.data.bipo import OccluderBank
from kpr.data.sampler import IdentitySampler, SampleRef
from kpr.data.synthetic_people import PARSING_CLASSES
from kpr.data.train_dataset import (
    DataConfig,
    EvalDataset,
    TrainDataset,
    collate_eval,
    collate_train,
    drop_keypoints,
)
from kpr.data.transforms import AugmentationConfig
from kpr.errors import ConfigError, ImageReadError, KPRError
from kpr.imaging import read_rgb
from kpr.keypoints import build_prompt, read_keypoints_file

HW = (128, 64)
CONFIG = DataConfig(augmentation=AugmentationConfig(image_size=HW, bipo_p=0.5))


@pytest.fixture(scope="module")
def bank(train_samples):
    return OccluderBank.from_samples(train_samples, HW, per_id=2, seed=0)


@pytest.fixture(scope="module")
def dataset(train_samples, bank):
    return TrainDataset(train_samples, CONFIG, occluders=bank, parsing_classes=PARSING_CLASSES)


def test_loader_yields_typed_pk_batches(dataset, train_samples):
    sampler = IdentitySampler([s.pid for s in train_samples], p=4, k=4, seed=0)
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_train)
    batch = next(iter(loader))
    n, (h, w) = 16, HW
    assert batch.images.shape == (n, 3, h, w) and batch.images.dtype == torch.float32
    assert batch.prompts.shape == (n, 10, h, w) and batch.prompts.dtype == torch.float32
    assert batch.target_masks.shape == (n, 9, h // 4, w // 4)
    assert batch.pids.shape == batch.camids.shape == (n,) and batch.pids.dtype == torch.int64
    assert len(batch.paths) == n and batch.skipped == 0
    torch.testing.assert_close(batch.target_masks.sum(1), torch.ones(n, h // 4, w // 4))
    assert batch.prompts.min() >= 0 and batch.prompts.max() <= 1
    assert (batch.target_masks.argmax(1) > 0).any()
    assert len(set(batch.pids.tolist())) == 4
    moved = batch.to("cpu")
    assert moved.paths == batch.paths and torch.equal(moved.images, batch.images)


def test_same_ref_same_item(dataset):
    ref = SampleRef(3, frozenset({0, 1, 2}), 1234)
    a, b = dataset[ref], dataset[ref]
    assert torch.equal(a.image, b.image) and torch.equal(a.prompt, b.prompt)
    assert torch.equal(a.target_masks, b.target_masks)
    assert not torch.equal(a.image, dataset[SampleRef(3, frozenset({0, 1, 2}), 99)].image)


def test_workers_do_not_change_the_batches(dataset, train_samples):
    pids = [s.pid for s in train_samples]
    batches = []
    for workers in (0, 2):
        loader = DataLoader(dataset, batch_sampler=IdentitySampler(pids, p=2, k=2, seed=1),
                            collate_fn=collate_train, num_workers=workers)
        batches.append([b for _, b in zip(range(2), loader)])
    for a, b in zip(*batches):
        assert torch.equal(a.images, b.images) and torch.equal(a.prompts, b.prompts)


def test_keypoint_labels_without_parsing_files(split_samples):
    samples = split_samples("train", with_parsing=False)
    config = dataclasses.replace(CONFIG, target_grouping="five_v", prompt_grouping="cck6")
    item = TrainDataset(samples, config)[0]
    assert item.prompt.shape == (8, *HW) and item.target_masks.shape == (6, HW[0] // 4, HW[1] // 4)
    assert (item.target_masks.argmax(0) > 0).any()


def test_bad_samples_raise_or_are_skipped(train_samples, tmp_path):
    broken = dataclasses.replace(train_samples[0], image=tmp_path / "gone.png")
    samples = [broken, *train_samples[1:4]]
    with pytest.raises(ImageReadError, match="gone.png"):
        TrainDataset(samples, CONFIG, parsing_classes=PARSING_CLASSES)[0]
    skipping = TrainDataset(samples, dataclasses.replace(CONFIG, on_error="skip"),
                            parsing_classes=PARSING_CLASSES)
    batch = collate_train([skipping[i] for i in range(4)])
    assert batch.skipped == 1 and len(batch.paths) == 3 and skipping.skipped == 1
    with pytest.raises(KPRError, match="every sample"):
        collate_train([None, None])


def test_bank_size_must_match(train_samples, bank):
    config = DataConfig(augmentation=AugmentationConfig(image_size=(64, 32)))
    with pytest.raises(ConfigError, match="occluder bank"):
        TrainDataset(train_samples, config, occluders=bank)


def test_eval_dataset_prompts(split_samples):
    samples = split_samples("query")
    ds = EvalDataset(samples, CONFIG)
    batch = collate_eval([ds[i] for i in range(len(samples))])
    assert batch.images.shape == (len(samples), 3, *HW)
    assert batch.prompts.shape == (len(samples), 10, *HW)
    sample = samples[0]
    skeletons = read_keypoints_file(sample.keypoints)
    expected = build_prompt(skeletons.target, skeletons.negatives, "cck8", HW,
                            read_rgb(sample.image).shape[:2])
    np.testing.assert_allclose(batch.prompts[0].numpy(), expected, atol=1e-6)
    empty = EvalDataset(samples, CONFIG, prompt_mode="empty")[0].prompt
    assert (empty[0] == 1).all() and (empty[1:] == 0).all()
    with pytest.raises(ConfigError):
        EvalDataset(samples, CONFIG, prompt_mode="none")  # type: ignore[arg-type]


def test_prompts_without_negatives(split_samples, train_samples):
    samples = split_samples("query")
    config = dataclasses.replace(CONFIG, prompt_negatives=False)
    sample = next(s for s in samples if read_keypoints_file(s.keypoints).num_negatives)
    skeletons = read_keypoints_file(sample.keypoints)
    expected = build_prompt(skeletons.target, None, "cck8", HW, read_rgb(sample.image).shape[:2])
    prompt = EvalDataset([sample], config)[0].prompt
    assert prompt.shape == (9, *HW)
    np.testing.assert_allclose(prompt.numpy(), np.delete(expected, 1, axis=0), atol=1e-6)
    empty = EvalDataset([sample], config, prompt_mode="empty")[0].prompt
    assert empty.shape == (9, *HW) and (empty[0] == 1).all() and (empty[1:] == 0).all()
    train = TrainDataset(train_samples, config, parsing_classes=PARSING_CLASSES)
    assert train[0].prompt.shape == (9, *HW)


def test_drop_keypoints_removes_the_requested_share_of_drawn_keypoints():
    kps = np.zeros((17, 3))
    kps[:10, 2] = 0.9  # 10 drawn keypoints, 7 below the threshold
    for fraction, removed in ((0.0, 0), (0.24, 2), (0.25, 3), (0.6, 6), (1.0, 10)):
        out = drop_keypoints(kps, fraction, np.random.default_rng(0))
        assert (out[:10, 2] == 0).sum() == removed and (out[10:] == 0).all()
        np.testing.assert_array_equal(out[:, :2], kps[:, :2])
    assert kps[:10, 2].min() == 0.9  # the input is not modified
    draws = {tuple(drop_keypoints(kps, 0.5, np.random.default_rng(seed))[:, 2]) for seed in range(5)}
    assert len(draws) > 1


def test_eval_dataset_drops_target_keypoints_reproducibly(split_samples):
    samples = split_samples("query")[:4]
    full = EvalDataset(samples, CONFIG)
    drop = dataclasses.replace(CONFIG, eval_drop_keypoints=1.0)
    dropped = EvalDataset(samples, drop)
    for i, sample in enumerate(samples):
        skeletons = read_keypoints_file(sample.keypoints)
        expected = build_prompt(None, skeletons.negatives, "cck8", HW, read_rgb(sample.image).shape[:2])
        np.testing.assert_allclose(dropped[i].prompt.numpy(), expected, atol=1e-6)
        assert (dropped[i].prompt[2:] == 0).all() and full[i].prompt[2:].sum() > 0
    half = dataclasses.replace(CONFIG, eval_drop_keypoints=0.5, eval_drop_seed=3)
    first, second = EvalDataset(samples, half)[1].prompt, EvalDataset(samples[::-1], half)[2].prompt
    assert torch.equal(first, second)  # the draw depends on the seed and the image, not the order
    other = dataclasses.replace(half, eval_drop_seed=4)
    assert any(not torch.equal(EvalDataset(samples, half)[i].prompt, EvalDataset(samples, other)[i].prompt)
               for i in range(len(samples)))
    with pytest.raises(ConfigError, match="eval_drop_keypoints"):
        dataclasses.replace(CONFIG, eval_drop_keypoints=1.5)


def test_bipo_occluders_come_from_the_other_ids_of_the_batch(train_samples, bank):
    picked: list[tuple[int, int]] = []

    class Recording(OccluderBank):
        def pick(self, pid, batch_pids, rng):
            occluder = super().pick(pid, batch_pids, rng)
            picked.append((pid, occluder.pid))
            return occluder

    recording = Recording(by_pid=bank.by_pid, frame_hw=bank.frame_hw)
    always = dataclasses.replace(CONFIG.augmentation, bipo_p=1.0)
    config = dataclasses.replace(CONFIG, augmentation=always)
    ds = TrainDataset(train_samples, config, occluders=recording, parsing_classes=PARSING_CLASSES)
    sampler = IdentitySampler([s.pid for s in train_samples], p=3, k=2, seed=2)
    for batch in list(sampler)[:3]:
        picked.clear()
        items = [ds[ref] for ref in batch]
        assert len(picked) == len(batch)
        for (pid, occluder_pid), ref in zip(picked, batch):
            assert occluder_pid != pid and occluder_pid in ref.batch_pids
        # the occluder's skeleton became a negative prompt somewhere in the batch
        assert any(item.prompt[1].max() > 0.9 for item in items)
