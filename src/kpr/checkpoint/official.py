"""Read checkpoints written by the official KPR code, safely.

Official ``*.pth.tar`` files are torch pickles holding a ``state_dict`` (keys prefixed ``module.``,
storages tagged ``cuda:0``), training metrics as numpy scalars and the training config as a pickled
``yacs.config.CfgNode``. They are read by :func:`kpr.checkpoint.weight_files.safe_torch_load`, which
maps ``CfgNode`` onto a plain dict and never imports yacs or runs code from the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kpr.checkpoint.weight_files import safe_torch_load, strip_module
from kpr.errors import CheckpointError


def to_plain(value: Any) -> Any:
    """A loaded config tree (OrderedDicts, numpy scalars, tuples) as JSON-ready Python data."""
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


@dataclass(frozen=True)
class OfficialCheckpoint:
    """The parts of an official checkpoint kpr uses.

    Attributes
    ----------
    path:
        Where it was read from.
    state_dict:
        Tensors with the DataParallel ``module.`` prefix stripped, on CPU.
    config:
        The stored training config as plain nested dicts (empty if the file has none).
    epoch, metrics:
        Training bookkeeping (``rank1``, ``mAP``, ``ssmd`` as floats when present).
    """

    path: Path
    state_dict: dict[str, torch.Tensor]
    config: dict[str, Any] = field(default_factory=dict)
    epoch: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)


def read_official_checkpoint(path: str | Path) -> OfficialCheckpoint:
    """Read an official KPR ``.pth.tar`` (or a bare official state_dict) without yacs and safely."""
    path = Path(path)
    raw = safe_torch_load(path)
    if not isinstance(raw, Mapping):
        raise CheckpointError(f"{path}: expected a dict at the top level, got {type(raw).__name__}")
    sd = raw.get("state_dict", raw)
    if not isinstance(sd, Mapping) or not sd:
        raise CheckpointError(f"{path}: field 'state_dict' is missing or empty")
    tensors = {k: v for k, v in sd.items() if isinstance(v, torch.Tensor)}
    if len(tensors) != len(sd):
        bad = next(k for k, v in sd.items() if not isinstance(v, torch.Tensor))
        raise CheckpointError(f"{path}: field 'state_dict' entry {bad!r} is not a tensor")
    metrics = {
        k: float(raw[k]) for k in ("rank1", "mAP", "ssmd") if k in raw and np.isscalar(raw[k])
    }
    epoch = raw.get("epoch")
    return OfficialCheckpoint(
        path=path,
        state_dict=strip_module(tensors),
        config=to_plain(raw.get("config") or {}),
        epoch=int(epoch) if isinstance(epoch, (int, np.integer)) else None,
        metrics=metrics,
    )
