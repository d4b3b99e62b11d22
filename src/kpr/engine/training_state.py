"""Everything needed to continue a run exactly: optimizer, epoch/step, sampler and RNG states.

Tensors go to ``training_state.safetensors``, the rest to ``training_state.json``; both are written
inside the checkpoint directory that :func:`kpr.checkpoint.kpr_format.save_kpr_checkpoint` renames
into place, so a checkpoint is complete or absent.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from kpr.errors import CheckpointError

TENSORS_FILE = "training_state.safetensors"
JSON_FILE = "training_state.json"


def _split_tensors(obj: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """Replace tensors in a nested structure by ``{"__tensor__": key}`` references."""
    if isinstance(obj, torch.Tensor):
        key = prefix or "root"
        tensors[key] = obj.detach().cpu().contiguous()
        return {"__tensor__": key}
    if isinstance(obj, dict):
        return {
            "__dict__": [
                [
                    _split_tensors(k, f"{prefix}.k{i}", tensors),
                    _split_tensors(v, f"{prefix}.{i}", tensors),
                ]
                for i, (k, v) in enumerate(obj.items())
            ]
        }
    if isinstance(obj, (list, tuple)):
        items = [_split_tensors(v, f"{prefix}.{i}", tensors) for i, v in enumerate(obj)]
        return {"__tuple__": items} if isinstance(obj, tuple) else items
    if isinstance(obj, np.ndarray):
        return {"__ndarray__": obj.tolist(), "dtype": str(obj.dtype)}
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _join_tensors(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__dict__" in obj:
            return {
                _join_tensors(k, tensors): _join_tensors(v, tensors) for k, v in obj["__dict__"]
            }
        if "__tuple__" in obj:
            return tuple(_join_tensors(v, tensors) for v in obj["__tuple__"])
        if "__ndarray__" in obj:
            return np.asarray(obj["__ndarray__"], dtype=obj["dtype"])
        return {k: _join_tensors(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_join_tensors(v, tensors) for v in obj]
    return obj


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np.random.set_state(tuple(state["numpy"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def write_training_state(directory: str | Path, state: dict[str, Any]) -> None:
    """Write a nested dict of tensors/numbers/arrays into ``directory`` (not atomic by itself)."""
    tensors: dict[str, torch.Tensor] = {}
    document = _split_tensors(state, "s", tensors)
    directory = Path(directory)
    save_file(tensors, str(directory / TENSORS_FILE))
    (directory / JSON_FILE).write_text(json.dumps(document), encoding="utf-8")


def read_training_state(directory: str | Path) -> dict[str, Any]:
    directory = Path(directory)
    paths = (directory / TENSORS_FILE, directory / JSON_FILE)
    for path in paths:
        if not path.is_file():
            raise CheckpointError(f"{path}: missing; this checkpoint cannot resume training")
    tensors = load_file(str(paths[0]))
    return _join_tensors(json.loads(paths[1].read_text(encoding="utf-8")), tensors)
