"""Training/evaluation recipes: typed, validated, loaded from YAML with ``key=value`` overrides."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from kpr.configuration import apply_overrides, from_dict, load_yaml
from kpr.data.prompt_dropout import PromptDropout
from kpr.data.transforms import AugmentationConfig
from kpr.errors import ConfigError
from kpr.losses.gilt import LossWeights
from kpr.modeling.config import KPRConfig


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


def _at_least(config: object, names: Sequence[str], minimum: float, strict: bool = False) -> None:
    """Each named field >= ``minimum`` (> with ``strict``); NaN fails both. The loader prefixes
    the section: "override optim.lr=-1: optim: lr must be > 0, got -1.0"."""
    for name in names:
        value = getattr(config, name)
        if not (value > minimum if strict else value >= minimum):
            raise ConfigError(f"{name} must be {'>' if strict else '>='} {minimum}, got {value}")


@dataclass(frozen=True)
class SamplerConfig:
    """P×K identity batches and how they are loaded.

    ``cache_mb``: decoded training images and keypoint files kept in memory by each loader process
    (each worker, or the training process with ``workers=0``), in MiB; 0 reads every file at every
    epoch.
    """

    ids_per_batch: int = 16
    instances_per_id: int = 4
    workers: int = 4
    cache_mb: float = 256.0

    def __post_init__(self) -> None:
        _at_least(self, ("ids_per_batch", "instances_per_id"), 1)
        _at_least(self, ("workers", "cache_mb"), 0)
        if self.cache_mb == float("inf"):
            raise ConfigError("cache_mb must be a finite number of MiB, got inf")


@dataclass(frozen=True)
class OptimConfig:
    """SGD with the official per-epoch warm-up + cosine schedule.

    ``fixbase_epochs``: the prompt tokenizer stays frozen for that many epochs. ``amp``: ``auto``
    = float16 autocast + grad scaling on CUDA, plain float32 on CPU; ``fp32`` = no autocast;
    ``bf16`` = bfloat16 autocast. ``lr_update``: ``epoch`` = the official per-epoch rate (epoch 0
    at ``min_lr``, the peak right after the warm-up epochs); ``step`` = the same curve at every step
    (a smooth warm-up from ``min_lr`` during the first epochs). ``optimizer``: ``sgd`` (official,
    with ``momentum``) or ``adamw`` (``momentum`` unused).
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
    lr_update: Literal["epoch", "step"] = "epoch"
    optimizer: Literal["sgd", "adamw"] = "sgd"

    def __post_init__(self) -> None:
        # A negative rate climbs the loss; 0 epochs "succeeded" without training or saving anything.
        _at_least(self, ("lr",), 0, strict=True)
        _at_least(self, ("min_lr", "momentum", "weight_decay"), 0)
        _at_least(self, ("epochs", "grad_accumulation"), 1)
        _at_least(self, ("warmup_epochs", "fixbase_epochs"), 0)
        if self.min_lr > self.lr:
            raise ConfigError(
                f"min_lr ({self.min_lr}) exceeds lr ({self.lr}): the schedule would rise; lower "
                "min_lr too"
            )
        if self.max_grad_norm is not None:
            _at_least(self, ("max_grad_norm",), 0, strict=True)


@dataclass(frozen=True)
class EvalConfig:
    """``every_epochs`` 0 = only after the last epoch. ``prompts``: evaluate with the keypoint
    prompts, the mask prompts (mask-prompt models), the empty prompt, or ``both`` (the model's own
    prompts and the empty one, :func:`kpr.engine.evaluate.prompt_modes`). ``protocol`` None = the
    dataset's own. ``rerank``:
    k-reciprocal re-ranking of the distances (k1=20, k2=6, lambda=0.3; off in the official
    evaluator)."""

    every_epochs: int = 0
    batch_size: int = 128
    prompts: Literal["keypoints", "masks", "empty", "both"] = "keypoints"
    max_rank: int = 50
    protocol: Literal["market", "no_filter"] | None = None
    visualize: int = 10
    topk_visualize: int = 10
    rerank: bool = False

    def __post_init__(self) -> None:
        _at_least(self, ("batch_size", "max_rank", "topk_visualize"), 1)
        _at_least(self, ("every_epochs", "visualize"), 0)


_AUGMENTATION = AugmentationConfig()  # the defaults a recipe's augmentation shares


@dataclass(frozen=True)
class RecipeAugmentation:
    """A recipe's ``augmentation``: the fields of :class:`~kpr.data.transforms.AugmentationConfig`
    with the same defaults, except ``image_size``, ``mean`` and ``std``: these belong to the model
    (``None`` = the model's; a recipe may repeat the model's value, anything else is an error, see
    :func:`resolve_augmentation`)."""

    image_size: tuple[int, int] | None = None
    pad: int = _AUGMENTATION.pad
    dropout_p: float = _AUGMENTATION.dropout_p
    dropout_holes: int = _AUGMENTATION.dropout_holes
    dropout_height: tuple[float, float] = _AUGMENTATION.dropout_height
    dropout_width: tuple[float, float] = _AUGMENTATION.dropout_width
    bipo_p: float = _AUGMENTATION.bipo_p
    bipo_max_count: int = _AUGMENTATION.bipo_max_count
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None

    def __post_init__(self) -> None:
        # Check the values when the recipe is read, not when training starts.
        _augmentation(self)


def _augmentation(recipe: RecipeAugmentation, **model_fields: Any) -> AugmentationConfig:
    given = {
        f.name: getattr(recipe, f.name)
        for f in dataclasses.fields(recipe)
        if getattr(recipe, f.name) is not None
    }
    return AugmentationConfig(**{**given, **model_fields})


# Recipe field → the model's field it must agree with.
_MODEL_FIELDS = {"image_size": "image_size", "mean": "pixel_mean", "std": "pixel_std"}


def resolve_augmentation(recipe: RecipeAugmentation, model: KPRConfig) -> AugmentationConfig:
    """The training/test augmentation for ``model``: its input size and normalisation, and the
    recipe's other settings.

    Raises
    ------
    ConfigError
        If the recipe sets ``image_size``, ``mean`` or ``std`` to anything but the model's value
        (it would otherwise be ignored, or break the model).
    """
    taken = {name: getattr(model, model_field) for name, model_field in _MODEL_FIELDS.items()}
    for name, expected in taken.items():
        given = getattr(recipe, name)
        if given is not None and tuple(given) != tuple(expected):
            model_field = _MODEL_FIELDS[name]
            raise ConfigError(
                f"augmentation.{name} {list(given)} differs from the model's {model_field} "
                f"{list(expected)}; remove it or set model_overrides.{model_field}"
            )
    return _augmentation(recipe, **taken)


@dataclass(frozen=True)
class TrainConfig:
    """A full training recipe.

    ``model`` names a registered model config (``kpr.modeling.build``), ``model_overrides`` changes
    its fields (``num_classes`` is set from the training identities). The image size and
    normalisation of ``augmentation`` are the model's (:func:`resolve_augmentation`).
    ``label_source`` says where the part-prediction targets come from
    (:func:`kpr.data.parsing.part_scores`): ``parsing`` requires the dataset's human-parsing labels
    (the paper's targets; checked once by :func:`kpr.data.parsing.require_parsing_labels`),
    ``keypoints`` draws them from the keypoints, ``auto`` uses the parsing file when a sample has
    one and the keypoints otherwise. ``train_prompts`` False trains a non-promptable baseline
    (every sample gets the empty prompt); ``prompt_dropout`` removes parts of the training prompts
    at random (:class:`~kpr.data.prompt_dropout.PromptDropout`). ``camera_embedding`` uses SIE when
    the training dataset has several cameras.
    """

    model: str = "kpr_swinv2_base_256x128"
    model_overrides: dict[str, Any] = field(default_factory=dict)
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    augmentation: RecipeAugmentation = field(default_factory=RecipeAugmentation)
    label_source: Literal["auto", "parsing", "keypoints"] = "parsing"
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossWeights = field(default_factory=LossWeights)
    eval: EvalConfig = field(default_factory=EvalConfig)
    train_prompts: bool = True
    prompt_dropout: PromptDropout = field(default_factory=PromptDropout)
    camera_embedding: bool = True
    on_bad_sample: Literal["raise", "skip"] = "raise"
    seed: int = 1
    output_dir: str = "runs/train"


def load_train_config(path: str | Path | None, overrides: Sequence[str] = ()) -> TrainConfig:
    """Read a YAML recipe (``None`` = defaults) and apply ``dotted.key=value`` overrides
    (:func:`kpr.configuration.apply_overrides`).

    Raises
    ------
    ConfigError
        Naming the recipe file and field for a bad recipe, or the override for a bad override.
    """
    config = TrainConfig()
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        try:
            config = from_dict(TrainConfig, load_yaml(path.read_text(encoding="utf-8")) or {}, "")
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
    return apply_overrides(config, overrides)
