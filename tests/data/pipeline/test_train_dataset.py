from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from kpr.data.bipo import OccluderBank
from kpr.data.sampler import IdentitySampler, SampleRef
from kpr.data.train_dataset import DataConfig, TrainDataset, collate_train
from kpr.data.transforms import AugmentationConfig
from kpr.errors import ConfigError, ImageReadError, KPRError
from kpr.synthetic import PARSING_CLASSES

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


def test_without_prompts_the_same_samples_and_no_prompt(dataset, train_samples, bank):
    """A baseline's loader builds no prompt, and skipping it changes no other draw."""
    plain = TrainDataset(
        train_samples,
        dataclasses.replace(CONFIG, with_prompts=False),
        occluders=bank,
        parsing_classes=PARSING_CLASSES,
    )
    refs = [SampleRef(i, frozenset({0, 1, 2}), 77 + i) for i in range(6)]
    with_prompts = collate_train([dataset[r] for r in refs])
    without = collate_train([plain[r] for r in refs])
    assert with_prompts.prompts is not None and without.prompts is None
    assert torch.equal(without.images, with_prompts.images)
    assert torch.equal(without.target_masks, with_prompts.target_masks)
    moved = without.to("cpu")
    assert moved.prompts is None and torch.equal(moved.images, without.images)


def test_workers_do_not_change_the_batches(dataset, train_samples):
    pids = [s.pid for s in train_samples]
    batches = []
    for workers in (0, 2):
        loader = DataLoader(
            dataset,
            batch_sampler=IdentitySampler(pids, p=2, k=2, seed=1),
            collate_fn=collate_train,
            num_workers=workers,
        )
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
    skipping = TrainDataset(
        samples, dataclasses.replace(CONFIG, on_error="skip"), parsing_classes=PARSING_CLASSES
    )
    batch = collate_train([skipping[i] for i in range(4)])
    assert batch.skipped == 1 and len(batch.paths) == 3 and skipping.skipped == 1
    with pytest.raises(KPRError, match="every sample"):
        collate_train([None, None])


def test_bank_size_must_match(train_samples, bank):
    config = DataConfig(augmentation=AugmentationConfig(image_size=(64, 32)))
    with pytest.raises(ConfigError, match="occluder bank"):
        TrainDataset(train_samples, config, occluders=bank)


def test_training_prompts_follow_the_model_channel_layout(train_samples):
    for negatives, background, channels in (
        (True, True, 10),
        (False, True, 9),
        (True, False, 9),
        (False, False, 8),
    ):
        config = dataclasses.replace(
            CONFIG, prompt_negatives=negatives, prompt_background=background
        )
        item = TrainDataset(train_samples, config, parsing_classes=PARSING_CLASSES)[0]
        assert item.prompt.shape == (channels, *HW)
        if background:  # the background channel is 1 - the drawn channels, clipped
            np.testing.assert_allclose(
                item.prompt[0].numpy(), np.clip(1 - item.prompt[1:].sum(0).numpy(), 0, 1), atol=1e-6
            )


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


@pytest.mark.parametrize(("prompt_type", "channels"), [("masks", 3), ("parsing", 10)])
def test_mask_prompt_models_train_on_the_augmented_person_masks(
    train_samples, bank, prompt_type, channels
):
    from kpr.masks import read_person_mask

    config = dataclasses.replace(
        CONFIG,
        augmentation=AugmentationConfig(image_size=HW, bipo_p=0.0, dropout_p=0.0, pad=0),
        prompt_type=prompt_type,
    )
    data = TrainDataset(train_samples, config, occluders=bank, parsing_classes=PARSING_CLASSES)
    for index in range(6):
        item = data[index]
        assert item.prompt.shape == (channels, *HW)
        person = read_person_mask(train_samples[index].masks)  # written at the model's size
        np.testing.assert_array_equal(item.prompt[1].numpy(), person.others)
        target = item.prompt[2:].amax(0).numpy() > 0
        assert (target <= person.target).all() and target.any()
        if prompt_type == "masks":
            np.testing.assert_array_equal(target, person.target)
    with_bipo = dataclasses.replace(
        config, augmentation=AugmentationConfig(image_size=HW, bipo_p=1.0)
    )
    item = TrainDataset(train_samples, with_bipo, occluders=bank, parsing_classes=PARSING_CLASSES)[
        0
    ]
    assert item.prompt[1].sum() > 0  # the pasted occluder is other people


def test_mask_prompt_training_needs_a_mask_per_sample(train_samples):
    from kpr.errors import DatasetError

    config = dataclasses.replace(CONFIG, prompt_type="masks")
    bare = [dataclasses.replace(s, masks=None) for s in train_samples[:2]]
    with pytest.raises(DatasetError, match=rf"{bare[0].image}: no person mask"):
        TrainDataset(bare, config, parsing_classes=PARSING_CLASSES)[0]
    with pytest.raises(ConfigError, match="parsing prompts need part labels of a known table"):
        TrainDataset(bare, dataclasses.replace(config, prompt_type="parsing"))


def test_cached_files_give_the_same_items_and_are_read_once(train_samples, bank, monkeypatch):
    import kpr.data.parsing as parsing_module
    import kpr.data.train_dataset as module

    assert all(s.parsing_format == "label_map" for s in train_samples[:6])
    reads = []
    real_read = module.read_rgb
    monkeypatch.setattr(module, "read_rgb", lambda path: reads.append(path) or real_read(path))
    label_reads = []
    real_labels = parsing_module.read_label_map

    def counted_labels(path, num_classes=None):
        label_reads.append(path)
        return real_labels(path, num_classes)

    monkeypatch.setattr(parsing_module, "read_label_map", counted_labels)
    monkeypatch.setattr(module, "read_label_map", counted_labels)
    plain = TrainDataset(train_samples, CONFIG, occluders=bank, parsing_classes=PARSING_CLASSES)
    cached = TrainDataset(
        train_samples, CONFIG, occluders=bank, parsing_classes=PARSING_CLASSES, cache_bytes=2**30
    )
    refs = [SampleRef(i % 6, frozenset({0, 1, 2}), 100 + i) for i in range(18)]
    for ref in refs:  # each index three times: the augmentations differ, the files do not
        a, b = plain[ref], cached[ref]
        assert torch.equal(a.image, b.image) and torch.equal(a.prompt, b.prompt)
        assert torch.equal(a.target_masks, b.target_masks)
    assert len(reads) == 18 + 6  # every read by the plain dataset, once per file by the cached
    assert len(label_reads) == 18 + 6
    assert len(cached._files) == 18  # an image, a keypoint file and a label map per sample
