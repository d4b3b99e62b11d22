"""Read checkpoints written by the official KPR code, safely.

Official ``*.pth.tar`` files are torch pickles holding a ``state_dict`` (keys prefixed ``module.``,
storages tagged ``cuda:0``), training metrics as numpy scalars and the training config as a pickled
``yacs.config.CfgNode``. They are read with ``torch.load(weights_only=True)`` and an allowlist of
exactly the globals those files reference: yacs' ``CfgNode`` is mapped onto ``OrderedDict`` (it is a
dict subclass whose extra state is plain data), so neither yacs nor any other code is imported or run.
Anything outside the allowlist is refused before it executes.
"""

from __future__ import annotations

import collections
import pickle
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.serialization import safe_globals

from kpr.errors import CheckpointError

_NUMPY_DTYPES = ("bool", "int8", "int16", "int32", "int64", "uint8", "float16", "float32", "float64")


def _allowed_globals() -> list[Any]:
    scalar = np._core.multiarray.scalar  # numpy >= 2 location of the scalar reconstructor
    return [
        (collections.OrderedDict, "yacs.config.CfgNode"),
        (scalar, "numpy.core.multiarray.scalar"),
        (scalar, "numpy._core.multiarray.scalar"),
        np.dtype,
        *(type(np.dtype(name)) for name in _NUMPY_DTYPES),
    ]


def safe_torch_load(path: str | Path) -> Any:
    """``torch.load`` a file with ``weights_only=True``, on CPU, allowing the official globals only.

    Raises
    ------
    CheckpointError
        If the file is missing or corrupt, or its pickle references anything outside the allowlist
        (a pickle trying to run code is refused before any of it runs).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        with safe_globals(_allowed_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        detail = str(exc).split("WeightsUnpickler error:")[-1].strip().splitlines()[0]
        raise CheckpointError(
            f"{path}: refused to unpickle: {detail}. kpr only loads tensors, plain data and the "
            "official config; it never runs code from a checkpoint"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as exc:
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({exc})") from None


def to_plain(value: Any) -> Any:
    """Turn a loaded config tree (OrderedDicts, numpy scalars, tuples) into JSON-ready Python data."""
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


def strip_prefix(state_dict: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """Remove ``prefix`` from every key that has it (keys without it are kept as they are)."""
    return {(k[len(prefix):] if k.startswith(prefix) else k): v for k, v in state_dict.items()}


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
        state_dict=strip_prefix(tensors, "module."),
        config=to_plain(raw.get("config") or {}),
        epoch=int(epoch) if isinstance(epoch, (int, np.integer)) else None,
        metrics=metrics,
    )
