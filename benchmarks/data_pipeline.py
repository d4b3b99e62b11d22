"""Training data-pipeline throughput, and keypoint-drawn part labels vs ground-truth label maps.

Generates a small synthetic dataset (128×64 crops) in a temporary directory, then:

1. throughput: training samples/s through ``DataLoader(TrainDataset, batch_sampler=
   IdentitySampler(16×4))`` — image + keypoint + label reading, BIPO, pad/crop, dropout, prompt
   heatmaps and soft part targets — per input size and worker count (a first, untimed epoch
   absorbs worker start-up);
2. label quality: IoU of the part labels drawn from keypoints alone
   (``kpr.data.parsing.scores_from_keypoints``) against the synthetic ground-truth label maps, per
   part, for the ``eight`` and ``five_v`` groupings.

Usage: python benchmarks/data_pipeline.py [--num-images 600] [--epochs 3] [--bipo-p 0.2]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from machine import machine_facts  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from kpr.data.bipo import OccluderBank  # noqa: E402
from kpr.data.datasets import build_dataset  # noqa: E402
from kpr.data.parsing import (  # noqa: E402
    keypoint_regions,
    read_sample_keypoints,
    scores_from_keypoints,
    scores_from_label_map,
    torso_split_row,
)
from kpr.data.sampler import IdentitySampler  # noqa: E402
from kpr.data.samples import ReIDDataset, ReIDSample  # noqa: E402
from kpr.data.train_dataset import DataConfig, TrainDataset, collate_train  # noqa: E402
from kpr.data.transforms import AugmentationConfig  # noqa: E402
from kpr.keypoints import target_grouping  # noqa: E402
from kpr.synthetic import SyntheticConfig, generate_synthetic_dataset  # noqa: E402


def throughput(
    data: ReIDDataset,
    image_size: tuple[int, int],
    workers: int,
    epochs: int,
    bipo_p: float,
    label_source: str = "auto",
) -> tuple[float, float]:
    """(samples/s, occluder-bank build seconds) of the training loader."""
    config = DataConfig(
        augmentation=AugmentationConfig(image_size=image_size, bipo_p=bipo_p),
        label_source=label_source,  # type: ignore[arg-type]
    )
    start = time.perf_counter()
    bank = OccluderBank.from_samples(data.train, image_size, per_id=5, seed=0)
    bank_seconds = time.perf_counter() - start
    dataset = TrainDataset(data.train, config, occluders=bank, parsing_classes=data.parsing_classes)
    sampler = IdentitySampler([s.pid for s in data.train], p=16, k=4, seed=0)
    loader = DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=collate_train,
        num_workers=workers,
        persistent_workers=workers > 0,
    )
    samples, elapsed = 0, 0.0
    for epoch in range(epochs + 1):
        sampler.set_epoch(epoch)
        start = time.perf_counter()
        count = sum(len(batch.paths) for batch in loader)
        if epoch > 0:  # epoch 0 warms up (worker start-up, first-call costs)
            samples += count
            elapsed += time.perf_counter() - start
    return samples / elapsed, bank_seconds


def keypoint_label_iou(
    samples: Sequence[ReIDSample], classes: Sequence[str], grouping: str
) -> tuple[np.ndarray, float]:
    """Per-part IoU of keypoint-drawn labels vs the label maps, and the whole-person IoU."""
    parts = target_grouping(grouping).num_parts
    inter, union = np.zeros(parts), np.zeros(parts)
    person_inter = person_union = 0
    for sample in samples:
        labels = cv2.imread(str(sample.parsing), cv2.IMREAD_UNCHANGED)
        target = read_sample_keypoints(sample).target
        split = torso_split_row(target)
        truth = scores_from_label_map(labels, classes, grouping, labels.shape, split)
        drawn = scores_from_keypoints(target, grouping, labels.shape)
        inter += np.logical_and(truth > 0.5, drawn > 0.5).sum(axis=(1, 2))
        union += np.logical_or(truth > 0.5, drawn > 0.5).sum(axis=(1, 2))
        person = keypoint_regions(target, labels.shape) > 0
        person_inter += int(np.logical_and(labels > 0, person).sum())
        person_union += int(np.logical_or(labels > 0, person).sum())
    return inter / np.maximum(union, 1), person_inter / max(person_union, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-images", type=int, default=600)
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per configuration")
    parser.add_argument("--bipo-p", type=float, default=0.2)
    parser.add_argument("--iou-images", type=int, default=400)
    args = parser.parse_args()
    print(machine_facts(), flush=True)
    synth = dataclasses.replace(
        SyntheticConfig(), num_images=args.num_images, num_train_ids=30, num_test_ids=10, seed=0
    )
    with tempfile.TemporaryDirectory(prefix="kpr-pipeline-bench-") as tmp:
        generate_synthetic_dataset(tmp, synth, workers=2)
        data = build_dataset("synthetic", root=Path(tmp), verbose=False)
        print(
            f"synthetic: {len(data.train)} training images of {data.num_train_pids} ids, "
            f"128x64 crops; P×K = 16×4; BIPO p = {args.bipo_p}\n"
        )
        print("| input | labels | workers | samples/s | occluder bank build |")
        print("|---|---|---|---|---|")
        runs = [
            ((256, 128), "auto", 0),
            ((256, 128), "auto", 2),
            ((128, 64), "auto", 0),
            ((128, 64), "auto", 2),
            ((256, 128), "keypoints", 0),
        ]
        for size, source, workers in runs:
            rate, bank_s = throughput(data, size, workers, args.epochs, args.bipo_p, source)
            name = "label maps" if source == "auto" else "from keypoints"
            print(
                f"| {size[0]}×{size[1]} | {name} | {workers} | {rate:.0f} | {bank_s:.2f} s |",
                flush=True,
            )

        every = [*data.train, *data.query, *data.gallery][: args.iou_images]
        print(f"\nkeypoint-drawn labels vs label maps, {len(every)} images:")
        for grouping in ("eight", "five_v"):
            iou, person = keypoint_label_iou(every, data.parsing_classes, grouping)
            names = target_grouping(grouping).part_names
            cells = ", ".join(f"{n} {v:.2f}" for n, v in zip(names, iou))
            print(f"{grouping}: mIoU {iou.mean():.3f} ({cells}); person IoU {person:.3f}")


if __name__ == "__main__":
    main()
