"""Torch datasets turning :class:`~kpr.data.samples.ReIDSample` records into model batches.

Training: read image, keypoints and part labels → augment (with BIPO occluders taken from the
other identities of the batch, see :class:`~kpr.data.sampler.IdentitySampler`) → prompt heatmaps
from the augmented keypoints (or, for mask-prompt models, the augmented masks) at the final
resolution → soft part targets at the feature size.

Evaluation crops are prepared by :class:`kpr.predictor.CropTransform` (see
:mod:`kpr.engine.evaluate`), like every crop kpr embeds.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from numpy.typing import NDArray
from torch.utils.data import Dataset

from kpr.data.bipo import OccluderBank
from kpr.data.file_cache import DecodedFileCache
from kpr.data.parsing import (
    LabelSource,
    feature_size,
    part_scores,
    read_label_map,
    read_sample_keypoints,
    target_masks,
)
from kpr.data.prompt_dropout import PromptDropout, drop_mask_prompt, drop_prompt
from kpr.data.sampler import SampleRef
from kpr.data.samples import ReIDSample
from kpr.data.transforms import (
    AugmentationConfig,
    Augmented,
    build_train_transform,
)
from kpr.errors import ConfigError, DatasetError, KPRError
from kpr.imaging import read_rgb
from kpr.keypoints import build_prompt, prompt_grouping, target_grouping
from kpr.masks import (
    CropMasks,
    layout_mask_prompt,
    read_part_labels,
    read_person_mask,
    table_for_classes,
)
from kpr.modeling.config import PromptType

log = logging.getLogger(__name__)

OnError = Literal["raise", "skip"]


@dataclass(frozen=True)
class DataConfig:
    """What the data pipeline produces for a model.

    Attributes
    ----------
    augmentation : AugmentationConfig
        Image size, normalisation and training augmentations.
    prompt_grouping : str
        Prompt part grouping (``"cck8"`` or ``"cck6"``).
    target_grouping : str
        Body-part target grouping (``"eight"`` or ``"five_v"``).
    feature_stride : int
        Input size / feature-map size (4 for KPR).
    label_source : {"auto", "parsing", "keypoints"}
        Where part labels come from (see :func:`kpr.data.parsing.part_scores`).
    on_error : {"raise", "skip"}
        Training only: a sample whose files are missing or malformed raises, or is dropped from
        its batch and counted in ``TrainBatch.skipped``.
    prompt_negatives : bool
        False: prompts ignore the other people's keypoints and have no negative channel
        ([background, parts…], Kp+1 channels), for models with ``KPRConfig.prompt_negatives``
        False.
    prompt_background : bool
        False: prompts have no background channel, for models with
        ``KPRConfig.prompt_background`` False (the official ``no_background_token``).
    prompt_dropout : PromptDropout
        Training only: parts of the prompt removed at random (never the part labels).
    prompt_type : {"keypoints", "masks", "parsing"}
        ``KPRConfig.prompt_type``: prompts from the keypoints, or from each sample's person mask
        (``ReIDSample.masks``) and, for ``parsing``, its part labels (``ReIDSample.parsing``).
    with_prompts : bool
        False: no prompt is built (``TrainItem.prompt`` and ``TrainBatch.prompts`` are None), for
        a model trained without prompts (``TrainConfig.train_prompts`` False).
    """

    augmentation: AugmentationConfig = field(default_factory=AugmentationConfig)
    prompt_grouping: str = "cck8"
    target_grouping: str = "eight"
    feature_stride: int = 4
    label_source: LabelSource = "auto"
    on_error: OnError = "raise"
    prompt_negatives: bool = True
    prompt_background: bool = True
    prompt_dropout: PromptDropout = field(default_factory=PromptDropout)
    prompt_type: PromptType = "keypoints"
    with_prompts: bool = True

    def __post_init__(self) -> None:
        prompt_grouping(self.prompt_grouping)
        target_grouping(self.target_grouping)
        if self.feature_stride < 1:
            raise ConfigError(f"DataConfig.feature_stride must be >= 1, got {self.feature_stride}")

    @property
    def image_size(self) -> tuple[int, int]:
        return self.augmentation.image_size

    @property
    def feature_hw(self) -> tuple[int, int]:
        return feature_size(self.image_size, self.feature_stride)


@dataclass(frozen=True, eq=False)
class TrainItem:
    """One training sample (tensors without the batch dimension, see :class:`TrainBatch`)."""

    image: torch.Tensor
    prompt: torch.Tensor | None
    target_masks: torch.Tensor
    pid: int
    camid: int
    path: str


@dataclass(frozen=True, eq=False)
class TrainBatch:
    """A collated training batch.

    Attributes
    ----------
    images : Tensor, shape [N, 3, H, W], float32
        Normalised.
    prompts : Tensor, shape [N, Kp+2, H, W], float32, or None
        [background, negative keypoints, prompt parts…] (Kp+1 channels without the negative one
        when ``DataConfig.prompt_negatives`` is False); None when ``DataConfig.with_prompts`` is
        False.
    target_masks : Tensor, shape [N, K+1, Hf, Wf], float32
        Soft part targets, background first.
    pids, camids : Tensor, shape [N], int64
    paths : tuple of str
    skipped : int
        Samples of the batch dropped because their files were bad (``on_error="skip"``).
    """

    images: torch.Tensor
    prompts: torch.Tensor | None
    target_masks: torch.Tensor
    pids: torch.Tensor
    camids: torch.Tensor
    paths: tuple[str, ...]
    skipped: int = 0

    def to(self, device: torch.device | str, non_blocking: bool = False) -> TrainBatch:
        moved = (
            None if t is None else t.to(device, non_blocking=non_blocking) for t in self._tensors()
        )
        return TrainBatch(
            *moved,
            paths=self.paths,
            skipped=self.skipped,
        )

    def pin_memory(self) -> TrainBatch:
        pinned = (None if t is None else t.pin_memory() for t in self._tensors())
        return TrainBatch(*pinned, paths=self.paths, skipped=self.skipped)

    def _tensors(self) -> tuple[torch.Tensor | None, ...]:
        return self.images, self.prompts, self.target_masks, self.pids, self.camids


def _prompt_tensor(
    target: np.ndarray | None, negatives: np.ndarray | None, config: DataConfig
) -> torch.Tensor:
    """The float32 prompt of one image for ``config`` (keypoints in output pixels)."""
    prompt = build_prompt(
        target,
        negatives,
        config.prompt_grouping,
        config.image_size,
        with_negatives=config.prompt_negatives,
        with_background=config.prompt_background,
    )
    return torch.from_numpy(prompt.astype(np.float32))


class TrainDataset(Dataset[TrainItem | None]):
    """Training samples → augmented images, prompts and part targets.

    Parameters
    ----------
    samples : sequence of ReIDSample
        The training split.
    config : DataConfig
    occluders : OccluderBank, optional
        BIPO occluders cut at ``config.image_size``; None disables BIPO.
    parsing_classes : sequence of str, optional
        Class names of ``label_map`` parsing files.
    seed : int
        Seed of the augmentations of plain integer indices (:class:`SampleRef` items carry their
        own seed).
    cache_bytes : int
        Decoded images and keypoint files kept in memory, per loader process, up to this many
        bytes (:class:`~kpr.data.file_cache.DecodedFileCache`); 0 reads every file each time.

    Items are fetched with a :class:`~kpr.data.sampler.SampleRef` (BIPO draws occluders from the
    other pids of the batch) or a plain index (occluders from any other bank identity). A sample
    whose files are bad gives None under ``on_error="skip"``; :func:`collate_train` drops and
    counts it.
    """

    def __init__(
        self,
        samples: Sequence[ReIDSample],
        config: DataConfig,
        *,
        occluders: OccluderBank | None = None,
        parsing_classes: Sequence[str] | None = None,
        seed: int = 0,
        cache_bytes: int = 0,
    ) -> None:
        if occluders is not None and occluders.frame_hw != config.image_size:
            raise ConfigError(
                f"occluder bank cut at {occluders.frame_hw}, but images are {config.image_size}"
            )
        self.samples = samples
        self.config = config
        self.occluders = occluders
        self.parsing_classes = None if parsing_classes is None else tuple(parsing_classes)
        self.part_table = table_for_classes(self.parsing_classes)
        if config.prompt_type == "parsing" and self.part_table is None:
            raise ConfigError(
                f"parsing prompts need part labels of a known table (kpr.masks.LABEL_TABLES); "
                f"the dataset's parsing classes are {self.parsing_classes}"
            )
        self.seed = seed
        self.skipped = 0
        self._transform = build_train_transform(config.augmentation)
        self._draws = 0
        self._files = DecodedFileCache(cache_bytes)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, item: int | SampleRef) -> TrainItem | None:
        if isinstance(item, SampleRef):
            index, batch_pids = item.index, item.batch_pids
            rng = np.random.default_rng(item.seed)
        else:
            self._draws += 1
            index, batch_pids = int(item), frozenset()
            rng = np.random.default_rng([self.seed, index, self._draws])
        sample = self.samples[index]
        try:
            return self._load(sample, batch_pids, rng)
        except KPRError as exc:
            if self.config.on_error == "raise":
                raise
            self.skipped += 1
            log.warning("skipping training sample %s: %s", sample.image, exc)
            return None

    def _load(
        self, sample: ReIDSample, batch_pids: frozenset[int], rng: np.random.Generator
    ) -> TrainItem:
        cfg = self.config
        image = self._files.get(("image", sample.image), lambda: read_rgb(sample.image))
        if sample.target_keypoints is None:  # its file, if any (in-memory arrays are the caller's)
            skeletons = self._files.get(
                ("keypoints", sample.keypoints), lambda: read_sample_keypoints(sample)
            )
        else:
            skeletons = read_sample_keypoints(sample)
        scores = part_scores(
            sample,
            cfg.target_grouping,
            cfg.image_size,
            parsing_classes=self.parsing_classes,
            skeletons=skeletons,
            image_hw=image.shape[:2],
            source=cfg.label_source,
            load_label_map=self._label_map,
        )
        bank = self.occluders
        picker = None if bank is None else (lambda r: bank.pick(sample.pid, batch_pids, r))
        use_masks = cfg.with_prompts and cfg.prompt_type != "keypoints"
        masks = self._prompt_masks(sample) if use_masks else None
        out = self._transform(
            image, scores, skeletons.target, skeletons.negatives, rng, picker, masks
        )
        assert out.part_scores is not None
        return TrainItem(
            image=torch.from_numpy(out.image),
            prompt=self._prompt(out, rng) if cfg.with_prompts else None,
            target_masks=target_masks(out.part_scores, cfg.feature_hw),
            pid=sample.pid,
            camid=sample.camid,
            path=str(sample.image),
        )

    def _prompt(self, out: Augmented, rng: np.random.Generator) -> torch.Tensor:
        """The prompt of an augmented sample, after prompt dropout (the sample's last draws)."""
        cfg = self.config
        if cfg.prompt_type == "keypoints":
            target, negatives = drop_prompt(
                out.target, out.negatives, cfg.prompt_dropout, cfg.prompt_grouping, rng
            )
            return _prompt_tensor(target, negatives, cfg)
        assert out.masks is not None
        kept = drop_mask_prompt(out.masks, cfg.prompt_dropout, cfg.prompt_grouping, rng)
        return torch.from_numpy(layout_mask_prompt(kept, cfg).astype(np.float32))

    def _label_map(self, path: Path, num_classes: int) -> NDArray[np.uint8]:
        """A decoded part-label map, kept with the images (it is read every epoch)."""
        return self._files.get(("labels", path), lambda: read_label_map(path, num_classes))

    def _prompt_masks(self, sample: ReIDSample) -> CropMasks:
        """The sample's person mask, with its part labels for ``parsing`` prompts."""
        if sample.masks is None:
            raise DatasetError(
                f"{sample.image}: no person mask (masks/<split>/<name>.png); mask-prompt training "
                "needs one per sample"
            )
        person = read_person_mask(sample.masks)
        if self.config.prompt_type == "masks":
            return person
        if sample.parsing is None or sample.parsing_format != "label_map":
            raise DatasetError(
                f"{sample.image}: no part-label map (parsing/<split>/<name>.png); parsing-prompt "
                "training needs one per sample"
            )
        assert self.part_table is not None
        return read_part_labels(sample.parsing, self.part_table, person)


def collate_train(items: Sequence[TrainItem | None]) -> TrainBatch:
    """Stack training items into a :class:`TrainBatch`, dropping (and counting) skipped ones."""
    kept = [it for it in items if it is not None]
    if not kept:
        raise KPRError(f"every sample of a batch of {len(items)} was skipped (bad files)")
    return TrainBatch(
        images=torch.stack([it.image for it in kept]),
        prompts=None if kept[0].prompt is None else torch.stack([it.prompt for it in kept]),
        target_masks=torch.stack([it.target_masks for it in kept]),
        pids=torch.tensor([it.pid for it in kept], dtype=torch.int64),
        camids=torch.tensor([it.camid for it in kept], dtype=torch.int64),
        paths=tuple(it.path for it in kept),
        skipped=len(items) - len(kept),
    )
