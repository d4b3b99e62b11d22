"""A training recipe's data pipeline: the dataset's training split → augmented P×K batches.

Built in one place for the trainer and for the batch server that feeds several side-by-side
trainings from one pipeline (:mod:`kpr.engine.batch_server`), so both draw the same batches.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kpr.data.bipo import OccluderBank
from kpr.data.datasets import ReIDDataset, build_dataset
from kpr.data.parsing import require_parsing_labels
from kpr.data.sampler import IdentitySampler
from kpr.data.train_dataset import DataConfig, TrainDataset
from kpr.engine.config import TrainConfig, resolve_augmentation
from kpr.errors import ConfigError
from kpr.modeling.build import model_config
from kpr.modeling.config import KPRConfig

__all__ = [
    "TrainData",
    "build_sampler",
    "build_train_data",
    "data_config_for",
    "open_train_dataset",
    "recipe_data_config",
]


def open_train_dataset(config: TrainConfig) -> ReIDDataset:
    """The recipe's dataset; with ``label_source: parsing``, checked to have the parsing labels
    (before a model or a BIPO bank is built)."""
    ds = config.dataset
    dataset = build_dataset(ds.name, root=Path(ds.root).expanduser(), **ds.options)
    if config.label_source == "parsing":
        require_parsing_labels(dataset)
    return dataset


def data_config_for(config: TrainConfig, model: KPRConfig) -> DataConfig:
    """The training data pipeline for a model of config ``model``: its input size, normalisation
    and prompt layout."""
    return DataConfig(
        augmentation=resolve_augmentation(config.augmentation, model),
        prompt_grouping=model.prompt_grouping,
        target_grouping=model.target_grouping,
        label_source=config.label_source,
        on_error=config.on_bad_sample,
        prompt_negatives=model.prompt_negatives,
        prompt_background=model.prompt_background,
        prompt_type=model.prompt_type,
        prompt_dropout=config.prompt_dropout,
        with_prompts=config.train_prompts,
    )


def recipe_data_config(config: TrainConfig) -> DataConfig:
    """:func:`data_config_for` the recipe's model, without building it (the fields the dataset
    sets, cameras and classes, do not change the data pipeline)."""
    return data_config_for(config, model_config(config.model, **config.model_overrides))


def build_sampler(
    config: TrainConfig, dataset: ReIDDataset, rank: int = 0, world_size: int = 1
) -> IdentitySampler:
    """The recipe's P×K sampler over ``dataset``'s training split (this rank's slice)."""
    sc = config.sampler
    return IdentitySampler(
        [s.pid for s in dataset.train],
        sc.ids_per_batch,
        sc.instances_per_id,
        seed=config.seed,
        rank=rank,
        world_size=world_size,
    )


@dataclass(frozen=True)
class TrainData:
    """The samples (``train_set[SampleRef]`` → one augmented item) and the batches of indices."""

    train_set: TrainDataset
    sampler: IdentitySampler


def build_train_data(
    config: TrainConfig,
    dataset: ReIDDataset,
    data_config: DataConfig,
    rank: int = 0,
    world_size: int = 1,
) -> TrainData:
    """The BIPO occluder bank (when ``bipo_p`` > 0), the training dataset and its sampler."""
    aug = data_config.augmentation
    bank = None
    if aug.bipo_p > 0:
        bank = OccluderBank.from_samples(
            dataset.train, aug.image_size, seed=config.seed, on_error=config.on_bad_sample
        )
        if len(bank.pids) < 2:
            raise ConfigError(
                f"{config.dataset.name}: BIPO needs occluders of at least 2 identities, "
                f"got {len(bank.pids)}"
            )
    train_set = TrainDataset(
        dataset.train,
        data_config,
        occluders=bank,
        parsing_classes=dataset.parsing_classes,
        seed=config.seed,
        cache_bytes=int(config.sampler.cache_mb * 2**20),
    )
    return TrainData(train_set, build_sampler(config, dataset, rank, world_size))
