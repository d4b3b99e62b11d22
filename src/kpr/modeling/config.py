"""Model configuration: everything needed to rebuild a KPR model, and nothing about training."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from kpr.configuration import as_hw
from kpr.errors import ConfigError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

PromptType = Literal["keypoints", "masks", "parsing"]
PROMPT_TYPES: tuple[PromptType, ...] = ("keypoints", "masks", "parsing")
HeadType = Literal["parts", "global"]
HEAD_TYPES: tuple[HeadType, ...] = ("parts", "global")

SOLIDER_NAMES = (
    "solider_swin",
    "solider_swin_base_patch4_window7_224",
    "imagenet_swin_base_patch4_window7_224",
)


@dataclass(frozen=True)
class BackboneConfig:
    """Which Swin to build.

    ``name`` is a timm Swin/SwinV2 model name (family ``timm``) or ``solider_swin`` (SOLIDER's
    own Swin, family ``solider``; the official keys ``solider_swin_base_patch4_window7_224`` and
    ``imagenet_swin_base_patch4_window7_224`` are accepted as aliases). ``None`` widths/depths/heads
    keep the architecture's own defaults. ``pretrained`` is an optional local weight file, loaded by
    ``kpr.create_model`` / ``kpr.checkpoint.build_model`` (``KPR(config)`` alone builds the
    architecture, randomly initialised).
    """

    name: str = "swinv2_base_window12to16_192to256"
    embed_dim: int | None = None
    depths: tuple[int, ...] | None = None
    num_heads: tuple[int, ...] | None = None
    drop_path_rate: float = 0.1
    semantic_weight: float | None = None
    pretrained: str | None = None

    @property
    def family(self) -> Literal["timm", "solider"]:
        return "solider" if self.name in SOLIDER_NAMES else "timm"


@dataclass(frozen=True)
class KPRConfig:
    """A KPR model.

    Attributes
    ----------
    image_size:
        Input (H, W); the feature map is (H/4, W/4).
    prompt_grouping, target_grouping:
        Names of the keypoint grouping of the prompt (``cck6``, ``cck8``, …) and of the K body
        parts predicted by the head (``five_v`` → K=5, ``eight`` → K=8).
    prompt_negatives, prompt_background:
        Whether the prompt has the negative-keypoint and background channels
        (prompt channels = Kp + 2 with both, the official default).
    prompt_type:
        What the prompt is drawn from (channel order [background, negatives, then the target's
        channels], each optional channel removed when switched off):
        ``keypoints`` (the paper's and the official models'): one Gaussian heatmap per group of
        ``prompt_grouping``, Kp target channels;
        ``masks``: the paper's "double-channel map", the target's segmentation mask (1 target
        channel) and the other people's as the negatives channel;
        ``parsing``: the target's body-part masks from a human parser, one channel per group of
        ``prompt_grouping`` (Kp target channels), see :mod:`kpr.masks`.
    num_cameras, camera_scale:
        SIE camera embedding (TransReID style); 0 cameras = none.
    fusion_stages:
        Which backbone stages the fusion uses (strictly increasing indices), each upsampled to
        stage 0's resolution H/4×W/4 before the 1×1 projection. ``(0, 1, 2, 3)`` = multi-stage
        fusion (MSF, the paper's model); ``(3,)`` = the last stage only, i.e. no MSF (the feature
        map is still upsampled to H/4×W/4, so part masks keep their size).
    fusion_dim:
        Channels after multi-stage fusion; ``None`` = the last stage's width.
    embedding_dim:
        D, the size of every retrieval embedding.
    num_classes:
        Identity classifiers' classes (0 = no classifiers, inference only).
    binary_visibility:
        Part k is visible iff it wins the argmax at ≥ 1 feature pixel (official default);
        otherwise visibility is the part map's maximum probability.
    head:
        ``parts``: the part-based head (PBH, the paper's model). ``global``: one globally
        average-pooled embedding and nothing else (the paper's Exp. 1 and 7 ablation baseline):
        embeddings [N, 1, D], always visible, no part maps, trained without part losses.
    """

    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    image_size: tuple[int, int] = (256, 128)
    prompt_grouping: str = "cck8"
    target_grouping: str = "eight"
    prompt_negatives: bool = True
    prompt_background: bool = True
    prompt_type: PromptType = "keypoints"
    num_cameras: int = 0
    camera_scale: float = 3.0
    fusion_stages: tuple[int, ...] = (0, 1, 2, 3)
    fusion_dim: int | None = None
    embedding_dim: int = 512
    num_classes: int = 0
    binary_visibility: bool = True
    pixel_mean: tuple[float, float, float] = IMAGENET_MEAN
    pixel_std: tuple[float, float, float] = IMAGENET_STD
    head: HeadType = "parts"

    def __post_init__(self) -> None:
        h, w = as_hw(self.image_size, "image_size")
        if h % 32 or w % 32:
            # 4× patch embedding then three 2× patch merges: Swin needs multiples of 32.
            raise ConfigError(f"image_size: expected (H, W) multiples of 32, got ({h}, {w})")
        if self.prompt_type not in PROMPT_TYPES:
            raise ConfigError(
                f"prompt_type: expected one of {list(PROMPT_TYPES)}, got {self.prompt_type!r}"
            )
        if self.head not in HEAD_TYPES:
            raise ConfigError(f"head: expected one of {list(HEAD_TYPES)}, got {self.head!r}")
        for name in ("pixel_mean", "pixel_std"):
            value = getattr(self, name)
            if len(value) != 3 or not all(math.isfinite(v) for v in value):
                raise ConfigError(f"{name}: expected 3 finite numbers (R, G, B), got {list(value)}")
        if min(self.pixel_std) <= 0:
            raise ConfigError(f"pixel_std: expected positive values, got {list(self.pixel_std)}")
        if self.embedding_dim < 1 or self.num_classes < 0 or self.num_cameras < 0:
            raise ConfigError(
                "embedding_dim must be >= 1 and num_classes, num_cameras >= 0, got "
                f"{self.embedding_dim}, {self.num_classes}, {self.num_cameras}"
            )
        stages = self.fusion_stages
        if not stages or stages[0] < 0 or any(a >= b for a, b in zip(stages, stages[1:])):
            raise ConfigError(
                "fusion_stages: expected strictly increasing stage indices >= 0, "
                f"got {list(stages)}"
            )

    @property
    def num_parts(self) -> int:
        from kpr.keypoints.groupings import target_grouping

        return target_grouping(self.target_grouping).num_parts

    @property
    def prompt_channels(self) -> int:
        from kpr.keypoints.groupings import prompt_grouping

        groups = prompt_grouping(self.prompt_grouping).num_parts
        kp = 1 if self.prompt_type == "masks" else groups
        return kp + int(self.prompt_negatives) + int(self.prompt_background)

    @property
    def feature_size(self) -> tuple[int, int]:
        return self.image_size[0] // 4, self.image_size[1] // 4
