"""Training/evaluation recipes: typed, validated, loaded from YAML with ``key=value`` overrides."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from kpr.configuration import apply_overrides, from_dict, to_dict
from kpr.data.transforms import AugmentationConfig
from kpr.errors import ConfigError
from kpr.losses.gilt import LossWeights


@dataclass(frozen=True)
class DatasetConfig:
    """Registered dataset name, root and adapter options; ``eval_*`` default to the same dataset
    (the Occluded-ReID and Partial-ReID recipes train on Market-1501 and test elsewhere)."""

    name: str = "synthetic"
    root: str = "data/synthetic"
    options: dict[str, Any] = field(default_factory=dict)
    eval_name: str | None = None
    eval_root: str | None = None
    eval_options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SamplerConfig:
    ids_per_batch: int = 16
    instances_per_id: int = 4
    workers: int = 4


@dataclass(frozen=True)
class OptimConfig:
    """SGD with the official per-epoch warm-up + cosine schedule.

    ``fixbase_epochs``: the prompt tokenizer stays frozen for that many epochs. ``amp``: ``auto``
    = float16 autocast + grad scaling on CUDA, plain float32 on CPU; ``fp32`` = no autocast; ``bf16`` = bfloat16 autocast.
    """

    lr: float = 0.008
    min_lr: float = 1.6e-5
    momentum: float = 0.9
    weight_decay: float = 1e-4
    epochs: int = 120
    warmup_epochs: int = 5
    fixbase_epochs: int = 0
    grad_accumulation: int = 1
    amp: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    max_grad_norm: float | None = None


@dataclass(frozen=True)
class EvalConfig:
    """``every_epochs`` 0 = only after the last epoch. ``prompts``: evaluate with the keypoint prompts,
    the empty prompt, or both. ``protocol`` None = the dataset's own. ``rerank``: k-reciprocal
    re-ranking of the distances (k1=20, k2=6, lambda=0.3; off in the official evaluator)."""

    every_epochs: int = 0
    batch_size: int = 128
    prompts: Literal["keypoints", "empty", "both"] = "keypoints"
    max_rank: int = 50
    protocol: Literal["market", "no_filter"] | None = None
    visualize: int = 10
    topk_visualize: int = 10
    rerank: bool = False


@dataclass(frozen=True)
class TrainConfig:
    """A full training recipe.

    ``model`` names a registered model config (``kpr.modeling.build``), ``model_overrides`` changes
    its fields (``num_classes`` is set from the training identities). The image size and
    normalisation of ``augmentation`` are always taken from the model. ``train_prompts`` False trains
    a non-promptable baseline (every sample gets the empty prompt). ``camera_embedding`` uses SIE
    when the training dataset has several cameras.
    """

    model: str = "kpr_swinv2_base_256x128"
    model_overrides: dict[str, Any] = field(default_factory=dict)
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    augmentation: AugmentationConfig = field(default_factory=AugmentationConfig)
    label_source: Literal["auto", "parsing", "keypoints"] = "auto"
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossWeights = field(default_factory=LossWeights)
    eval: EvalConfig = field(default_factory=EvalConfig)
    train_prompts: bool = True
    camera_embedding: bool = True
    on_bad_sample: Literal["raise", "skip"] = "raise"
    seed: int = 1
    output_dir: str = "runs/train"


def load_train_config(path: str | Path | None, overrides: Sequence[str] = ()) -> TrainConfig:
    """Read a YAML recipe (``None`` = defaults) and apply ``dotted.key=value`` overrides."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: invalid YAML ({exc})") from None
    merged = apply_overrides(to_dict(from_dict(TrainConfig, data, where=str(path or "config"))), overrides)
    return from_dict(TrainConfig, merged, where=str(path or "config"))
