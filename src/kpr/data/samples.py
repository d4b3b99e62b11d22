"""The record every dataset adapter produces, and the split container."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

Split = Literal["train", "query", "gallery"]
# How a sample's human-parsing labels are stored on disk.
ParsingFormat = Literal["pifpaf36", "label_map"]


@dataclass(frozen=True)
class ReIDSample:
    """One person crop of a dataset split.

    Attributes
    ----------
    image:
        Path of the crop.
    pid, camid:
        Identity (train splits: relabelled 0..P-1) and camera index (0-based). Market rules: junk
        (pid −1) is dropped by the adapters; distractors keep pid 0 in query/gallery.
    keypoints:
        Official keypoint JSON of the crop, or ``None``.
    target_keypoints, negative_keypoints:
        In-memory keypoints ([17, 3] and [M, 17, 3], crop pixels) for datasets that carry them
        (Occluded-PoseTrack); they take precedence over ``keypoints``.
    parsing, parsing_format:
        Human-parsing label file and its format: official 36-channel PifPaf ``.npy`` fields, or a
        ``label_map`` PNG whose classes are listed by the dataset (``ReIDDataset.parsing_classes``).
    masks:
        Person-mask PNG of the crop (0 background, 1 target, 2 other people, see
        :mod:`kpr.masks`), the prompt of mask-prompt models, or ``None``.
    attributes:
        Dataset-specific extras (``occ_level``, ``occlusion``, ``video_id``, …).
    """

    image: Path
    pid: int
    camid: int
    split: Split
    keypoints: Path | None = None
    target_keypoints: np.ndarray | None = field(default=None, compare=False, repr=False)
    negative_keypoints: np.ndarray | None = field(default=None, compare=False, repr=False)
    parsing: Path | None = None
    parsing_format: ParsingFormat | None = None
    masks: Path | None = None
    attributes: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class ReIDDataset:
    """The three splits of a dataset plus what training needs to know about them."""

    name: str
    train: Sequence[ReIDSample]
    query: Sequence[ReIDSample]
    gallery: Sequence[ReIDSample]
    num_cameras: int
    parsing_classes: tuple[str, ...] | None = None
    eval_protocol: Literal["market", "no_filter"] = "market"

    @property
    def num_train_pids(self) -> int:
        return len({s.pid for s in self.train})

    def stats_table(self) -> str:
        """Ids, images, cameras and keypoint coverage per split, as a printable table."""
        lines = [
            f"{self.name}: {'split':8s} {'ids':>6s} {'images':>8s} "
            f"{'cameras':>8s} {'w/ kps':>8s} {'w/o kps':>8s}"
        ]
        for split in ("train", "query", "gallery"):
            samples: Sequence[ReIDSample] = getattr(self, split)
            with_kps = sum(
                s.keypoints is not None or s.target_keypoints is not None for s in samples
            )
            lines.append(
                f"{'':{len(self.name) + 1}s} {split:8s} {len({s.pid for s in samples}):6d} "
                f"{len(samples):8d} {len(Counter(s.camid for s in samples)):8d} "
                f"{with_kps:8d} {len(samples) - with_kps:8d}"
            )
        return "\n".join(lines)
