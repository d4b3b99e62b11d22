"""Loading and saving models: official ``.pth.tar`` files and pretrained backbone weights
(read-only), and kpr checkpoint directories.

``kpr.modeling`` is architecture only; every weight kpr reads comes in through this package.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from kpr.checkpoint.convert import convert_official
from kpr.checkpoint.kpr_format import (
    KPRCheckpoint,
    check_fits,
    load_weights,
    read_kpr_checkpoint,
    save_kpr_checkpoint,
)
from kpr.checkpoint.official import read_official_checkpoint
from kpr.checkpoint.pretrained import (
    LoadReport,
    build_model,
    create_model,
    load_pretrained_backbone,
)
from kpr.errors import CheckpointError, ConfigError
from kpr.modeling.config import KPRConfig
from kpr.modeling.kpr import KPR

__all__ = [
    "KPRCheckpoint",
    "LoadReport",
    "build_model",
    "create_model",
    "inspect_checkpoint",
    "load_checkpoint",
    "load_model",
    "load_pretrained_backbone",
    "read_official_checkpoint",
    "save_model",
]


def load_checkpoint(path: str | Path, *, semantic_weight: float | None = None) -> KPRCheckpoint:
    """Read any supported checkpoint into a kpr config + state dict.

    ``path`` is a kpr checkpoint directory, or an official ``.pth.tar`` file (converted on the
    fly). ``semantic_weight`` overrides the SOLIDER semantic weight of an official checkpoint that
    has semantic layers (default: what the official test config of its recipe uses).
    """
    path = Path(path)
    if path.is_dir():
        ckpt = read_kpr_checkpoint(path)
        if semantic_weight is not None:
            raise CheckpointError(
                f"{path}: semantic_weight={semantic_weight} cannot be overridden for a kpr "
                f"checkpoint, which stores its own (model.backbone.semantic_weight="
                f"{ckpt.config.backbone.semantic_weight}); the override is only for converting "
                "official .pth.tar files"
            )
        return ckpt
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint file or directory")
    official = read_official_checkpoint(path)
    converted = convert_official(official, semantic_weight)
    metadata: dict[str, Any] = {
        "source": "official",
        "source_file": path.name,
        "epoch": official.epoch,
        "metrics": official.metrics,
        "official_config": converted.source_config,
    }
    return KPRCheckpoint(converted.config, converted.state_dict, metadata)


def _architecture(config: KPRConfig, source: Path) -> KPR:
    try:
        return KPR(config)
    except ConfigError as exc:
        raise CheckpointError(f"{source}: its model config cannot be built: {exc}") from None


def inspect_checkpoint(path: str | Path) -> KPRCheckpoint:
    """:func:`load_checkpoint`, then check that every tensor fits the model its config describes.

    The model is built on the ``meta`` device (no memory, no initialisation), so this is cheap
    even for Swin-B; a checkpoint that passes loads with :func:`load_model`.

    Raises
    ------
    CheckpointError
        If the checkpoint cannot be read, its config cannot be built, or a tensor is missing,
        unexpected or of the wrong shape (named).
    """
    path = Path(path)
    ckpt = load_checkpoint(path)
    with torch.device("meta"):
        model = _architecture(ckpt.config, path)
    check_fits(model, ckpt.state_dict, path)
    return ckpt


def load_model(
    path: str | Path, *, device: str | torch.device = "cpu", semantic_weight: float | None = None
) -> KPR:
    """Load an official ``.pth.tar`` or a kpr checkpoint directory; the model is in eval mode."""
    path = Path(path)
    ckpt = load_checkpoint(path, semantic_weight=semantic_weight)
    model = _architecture(ckpt.config, path)
    load_weights(model, ckpt.state_dict, path)
    return model.to(device).eval()


def save_model(
    model: KPR,
    directory: str | Path,
    metadata: dict[str, Any] | None = None,
    *,
    overwrite: bool = False,
) -> Path:
    """Save a model as a kpr checkpoint directory (safetensors + JSON config, atomically).

    A previous kpr checkpoint at ``directory`` is replaced; see :func:`save_kpr_checkpoint` for
    what else may be there.
    """
    return save_kpr_checkpoint(
        directory, model.config, model.state_dict(), metadata, overwrite=overwrite
    )
