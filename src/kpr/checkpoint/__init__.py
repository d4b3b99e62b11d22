"""Loading and saving models: official ``.pth.tar`` files (read-only) and kpr checkpoint directories."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from kpr.checkpoint.convert import convert_official
from kpr.checkpoint.kpr_format import KPRCheckpoint, load_weights, read_kpr_checkpoint, save_kpr_checkpoint
from kpr.checkpoint.official import read_official_checkpoint
from kpr.errors import CheckpointError
from kpr.modeling.kpr import KPR

__all__ = ["load_checkpoint", "load_model", "save_model", "read_official_checkpoint"]


def load_checkpoint(path: str | Path, *, semantic_weight: float | None = None) -> KPRCheckpoint:
    """Read any supported checkpoint into a kpr config + state dict.

    ``path`` is a kpr checkpoint directory, or an official ``.pth.tar`` file (converted on the
    fly). ``semantic_weight`` overrides the SOLIDER semantic weight of an official checkpoint
    (default: what the official test config of its recipe uses).
    """
    path = Path(path)
    if path.is_dir():
        ckpt = read_kpr_checkpoint(path)
        if semantic_weight is not None:
            raise CheckpointError(f"{path}: semantic_weight can only be overridden for official checkpoints")
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


def load_model(
    path: str | Path, *, device: str | torch.device = "cpu", semantic_weight: float | None = None
) -> KPR:
    """Load an official ``.pth.tar`` or a kpr checkpoint directory; returns the model in eval mode."""
    ckpt = load_checkpoint(path, semantic_weight=semantic_weight)
    model = KPR(ckpt.config)
    load_weights(model, ckpt.state_dict, path)
    return model.to(device).eval()


def save_model(model: KPR, directory: str | Path, metadata: dict[str, Any] | None = None) -> Path:
    """Save a model as a kpr checkpoint directory (safetensors + JSON config, atomically)."""
    return save_kpr_checkpoint(directory, model.config, model.state_dict(), metadata)
