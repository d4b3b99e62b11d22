"""Official KPR checkpoint → kpr config + state dict.

The architecture is read from the tensors (widths, depths, heads, K, prompt channels, cameras,
semantic layers, classes) and from the stored config, which names the real backbone, the image
size, normalisation and groupings. The config's backbone name is only trusted for the family and
the timm architecture; sizes always come from the shapes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from kpr.checkpoint.official import OfficialCheckpoint
from kpr.checkpoint.solider import convert_official_state_dict
from kpr.errors import CheckpointError
from kpr.keypoints.groupings import PROMPT_GROUPINGS, TARGET_GROUPINGS
from kpr.modeling.config import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    SOLIDER_NAMES,
    BackboneConfig,
    KPRConfig,
)

BACKBONE_PREFIX = "backbone_appearance_feature_extractor."
_TIMM_DEFAULT_BACKBONE = "swinv2_base_window12to16_192to256.ms_in22k_ft_in1k"

# Head, fusion and prompt tensors: official name → kpr name (backbone tensors: per family).
_HEAD_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), repl)
    for pattern, repl in (
        (r"^msf\.dim_reduce\.layers\.0\.", "fusion.proj."),
        (r"^msf\.dim_reduce\.layers\.1\.", "fusion.bn."),
        (r"^pixel_classifier\.", "head.pixel_classifier."),
        (
            r"^(global|foreground|background|parts)_after_pooling_dim_reduce\.layers\.(\d)\.",
            r"head.reduce_\1.\2.",
        ),
        (r"^(global|foreground|background)_identity_classifier\.", r"head.neck_\1."),
        (r"^concat_parts_identity_classifier\.", "head.neck_concat."),
        (r"^parts_identity_classifier\.(\d+)\.", r"head.neck_parts.\1."),
    )
)

# Official tensors with no use at inference or training (aliases and unused modules).
_UNUSED = re.compile(
    rf"^{re.escape(BACKBONE_PREFIX)}"
    r"(parts_embed|patch_embed\..*|norm\.(weight|bias)|model\.norm\.(weight|bias))$"
)


@dataclass(frozen=True)
class ConvertedCheckpoint:
    config: KPRConfig
    state_dict: dict[str, torch.Tensor]
    source_config: dict[str, Any]


def _get(cfg: Mapping[str, Any], dotted: str, default: Any = None) -> Any:
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node


def _require(sd: Mapping[str, torch.Tensor], key: str, path: Any) -> torch.Tensor:
    if key not in sd:
        raise CheckpointError(
            f"{path}: field 'state_dict' lacks {key!r}; is this a KPR checkpoint?"
        )
    return sd[key]


def _stage_layout(
    sd: Mapping[str, torch.Tensor], stage_key: str, head_key: str, heads_dim: int, path: Any
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Depths from block indices and heads from a per-block tensor, for 4 stages."""
    pattern = re.compile(
        rf"^{re.escape(BACKBONE_PREFIX)}model\.{stage_key}\.(\d+)\.blocks\.(\d+)\."
        rf"{re.escape(head_key)}$"
    )
    blocks: dict[int, dict[int, int]] = {}
    for key, value in sd.items():
        m = pattern.match(key)
        if m:
            blocks.setdefault(int(m.group(1)), {})[int(m.group(2))] = value.shape[heads_dim]
    stages = sorted(blocks)
    if stages != list(range(len(stages))) or not stages:
        raise CheckpointError(f"{path}: backbone stages {stages} are not contiguous from 0")
    depths = tuple(max(blocks[s]) + 1 for s in stages)
    heads = tuple(blocks[s][0] for s in stages)
    return depths, heads


def official_test_semantic_weight(cfg: Mapping[str, Any]) -> float:
    """The semantic weight the official *test* config of this recipe uses.

    The official test path never restores ``model.solider`` from the checkpoint: the SOLIDER
    market and occluded-duke test YAMLs set −1 (modulation off), the others keep 0.2.
    """
    targets = _get(cfg, "data.targets", []) or []
    if targets and set(targets) <= {"market1501", "occluded_duke"}:
        return -1.0
    return 0.2


def _no_semantic_layers(path: Any, semantic_weight: float) -> str:
    return (
        f"{path}: semantic_weight={semantic_weight} cannot take effect: this checkpoint has no "
        "SOLIDER semantic layers; leave semantic_weight unset"
    )


def infer_config(ckpt: OfficialCheckpoint, semantic_weight: float | None = None) -> KPRConfig:
    """Rebuild the :class:`KPRConfig` of an official checkpoint from its shapes and its config."""
    sd, cfg, path = ckpt.state_dict, ckpt.config, ckpt.path
    name = _get(cfg, "model.kpr.backbone") or _TIMM_DEFAULT_BACKBONE
    solider = any(k.startswith(BACKBONE_PREFIX + "model.stages.") for k in sd)
    timm_like = any(k.startswith(BACKBONE_PREFIX + "model.layers.") for k in sd)
    if solider == timm_like:
        raise CheckpointError(
            f"{path}: cannot tell the backbone family from the tensors (backbone {name!r})"
        )
    if solider and name not in SOLIDER_NAMES:
        raise CheckpointError(f"{path}: SOLIDER-style tensors but config names backbone {name!r}")
    if solider:
        embed = _require(sd, BACKBONE_PREFIX + "model.patch_embed.projection.weight", path)
        depths, heads = _stage_layout(
            sd, "stages", "attn.w_msa.relative_position_bias_table", 1, path
        )
        has_semantic = any(".semantic_embed_w." in k for k in sd)
        if semantic_weight is not None and not has_semantic:
            raise CheckpointError(_no_semantic_layers(path, semantic_weight))
        if semantic_weight is None and has_semantic:
            semantic_weight = official_test_semantic_weight(cfg)
        # The official configs' negative weights mean "modulation off".
        sem = semantic_weight if semantic_weight is not None and semantic_weight >= 0 else None
        backbone = BackboneConfig(
            name="solider_swin",
            embed_dim=embed.shape[0],
            depths=depths,
            num_heads=heads,
            drop_path_rate=float(_get(cfg, "model.promptable_trans.drop_path", 0.1)),
            semantic_weight=sem,
        )
        prompt_key = BACKBONE_PREFIX + "masks_patch_embed.projection.weight"
    else:
        if name in SOLIDER_NAMES:
            raise CheckpointError(f"{path}: timm-style tensors but config names backbone {name!r}")
        if semantic_weight is not None:
            raise CheckpointError(_no_semantic_layers(path, semantic_weight))
        embed = _require(sd, BACKBONE_PREFIX + "model.patch_embed.proj.weight", path)
        depths, _ = _stage_layout(sd, "layers", "norm1.weight", 0, path)
        # SwinV2 blocks have one logit scale per head, Swin v1 blocks a bias table column per head.
        if any(k.endswith("attn.logit_scale") for k in sd):
            heads = _stage_layout(sd, "layers", "attn.logit_scale", 0, path)[1]
        else:
            heads = _stage_layout(sd, "layers", "attn.relative_position_bias_table", 1, path)[1]
        backbone = BackboneConfig(
            name=name, embed_dim=embed.shape[0], depths=depths, num_heads=heads
        )
        prompt_key = BACKBONE_PREFIX + "masks_patch_embed.proj.weight"

    k_plus_1 = _require(sd, "pixel_classifier.classifier.weight", path).shape[0]
    prompt_channels = _require(sd, prompt_key, path).shape[1]
    target = _get(cfg, "model.kpr.masks.preprocess")
    prompt = _get(cfg, "model.kpr.keypoints.prompt_preprocess")
    if target not in TARGET_GROUPINGS or TARGET_GROUPINGS[target].num_parts != k_plus_1 - 1:
        fitting = (g.name for g in TARGET_GROUPINGS.values() if g.num_parts == k_plus_1 - 1)
        target = next(fitting, None)
        if target is None:
            raise CheckpointError(f"{path}: {k_plus_1 - 1} parts match no known target grouping")
    negatives = bool(_get(cfg, "model.kpr.keypoints.use_negative_keypoints", True))
    background = not bool(_get(cfg, "model.promptable_trans.no_background_token", False))
    extra = int(negatives) + int(background)
    grouping = PROMPT_GROUPINGS.get(prompt)
    if grouping is None or grouping.num_parts + extra != prompt_channels:
        raise CheckpointError(
            f"{path}: prompt tokenizer has {prompt_channels} channels, which does not fit prompt "
            f"grouping {prompt!r} with negatives={negatives} and background={background}"
        )
    sie = sd.get(BACKBONE_PREFIX + "sie_embed")
    classifier = sd.get("foreground_identity_classifier.classifier.weight")
    embedding = _require(sd, "parts_after_pooling_dim_reduce.layers.0.weight", path)
    height = int(_get(cfg, "data.height", 256))
    width = int(_get(cfg, "data.width", 128))
    return KPRConfig(
        backbone=backbone,
        image_size=(height, width),
        prompt_grouping=prompt,
        target_grouping=target,
        prompt_negatives=negatives,
        prompt_background=background,
        num_cameras=int(sie.shape[0]) if sie is not None else 0,
        camera_scale=float(_get(cfg, "model.transreid.sie_coe", 3.0)),
        fusion_dim=int(_require(sd, "msf.dim_reduce.layers.0.weight", path).shape[0]),
        embedding_dim=int(embedding.shape[0]),
        num_classes=int(classifier.shape[0]) if classifier is not None else 0,
        binary_visibility=bool(_get(cfg, "model.kpr.testing_binary_visibility_score", True)),
        pixel_mean=tuple(_get(cfg, "data.norm_mean", IMAGENET_MEAN)),
        pixel_std=tuple(_get(cfg, "data.norm_std", IMAGENET_STD)),
    )


def convert_state_dict(
    sd: Mapping[str, torch.Tensor], config: KPRConfig, path: Any = "state_dict"
) -> dict[str, torch.Tensor]:
    """Map official tensor names onto kpr's module names (unused official tensors are dropped).

    ``path`` names the source in errors.
    """
    out: dict[str, torch.Tensor] = {}
    backbone_model: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        if _UNUSED.match(key):
            continue
        if key.startswith(BACKBONE_PREFIX):
            rest = key[len(BACKBONE_PREFIX) :]
            if rest == "sie_embed":
                out["camera_embedding"] = value.reshape(value.shape[0], -1)
            elif rest.startswith("masks_patch_embed."):
                sub = rest[len("masks_patch_embed.") :].replace("projection.", "proj.")
                out["prompt_encoder." + sub] = value
            elif rest.startswith("model."):
                backbone_model[rest[len("model.") :]] = value
            else:
                raise CheckpointError(f"{path}: unknown backbone tensor {key!r}")
            continue
        for pattern, repl in _HEAD_RULES:
            if pattern.match(key):
                out[pattern.sub(repl, key, count=1)] = value
                break
        else:
            raise CheckpointError(f"{path}: unknown tensor {key!r}")
    if config.backbone.family == "solider":
        if config.backbone.semantic_weight is None:
            backbone_model = {
                k: v for k, v in backbone_model.items() if not k.startswith("semantic_embed_")
            }
        try:
            converted = convert_official_state_dict(backbone_model)
        except CheckpointError as exc:
            raise CheckpointError(f"{path}: {exc}") from None
        out.update({"backbone." + k: v for k, v in converted.items()})
    else:
        out.update({"backbone.model." + k: v for k, v in backbone_model.items()})
    return out


def convert_official(
    ckpt: OfficialCheckpoint, semantic_weight: float | None = None
) -> ConvertedCheckpoint:
    """Convert an official checkpoint into a kpr config and state dict.

    ``semantic_weight`` overrides the SOLIDER semantic weight; a checkpoint without semantic
    layers refuses it rather than ignoring it.
    """
    config = infer_config(ckpt, semantic_weight)
    state_dict = convert_state_dict(ckpt.state_dict, config, ckpt.path)
    return ConvertedCheckpoint(config, state_dict, ckpt.config)
