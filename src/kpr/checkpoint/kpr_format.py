"""kpr's own checkpoint format: a directory with ``model.safetensors`` and ``config.json``.

Both files are written into a temporary sibling directory that is renamed into place, so a
checkpoint is either complete or absent. The config is also embedded in the safetensors metadata,
so the weight file alone still says what it is.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from kpr.configuration import from_dict, to_dict
from kpr.errors import CheckpointError, ConfigError
from kpr.modeling.config import KPRConfig

FORMAT = "kpr-checkpoint/1"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


@dataclass(frozen=True)
class KPRCheckpoint:
    config: KPRConfig
    state_dict: dict[str, torch.Tensor]
    metadata: dict[str, Any] = field(default_factory=dict)


def save_kpr_checkpoint(
    directory: str | Path,
    config: KPRConfig,
    state_dict: dict[str, torch.Tensor],
    metadata: dict[str, Any] | None = None,
    write_extra: Callable[[Path], None] | None = None,
) -> Path:
    """Write a checkpoint directory atomically (an existing one is replaced only once complete).

    ``write_extra(tmp_dir)`` may add files (e.g. training state) before the directory is renamed.
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    document = {"format": FORMAT, "model": to_dict(config), "metadata": metadata or {}}
    text = json.dumps(document, indent=2, sort_keys=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        save_file(tensors, str(tmp / WEIGHTS_FILE), metadata={"format": FORMAT, "config": text})
        (tmp / CONFIG_FILE).write_text(text + "\n", encoding="utf-8")
        if write_extra is not None:
            write_extra(tmp)
        if directory.exists():
            old = directory.with_name(f".{directory.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            directory.rename(old)
            tmp.rename(directory)
            shutil.rmtree(old)
        else:
            tmp.rename(directory)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return directory


def read_kpr_checkpoint(directory: str | Path) -> KPRCheckpoint:
    """Read a checkpoint directory written by :func:`save_kpr_checkpoint`."""
    directory = Path(directory)
    config_path, weights_path = directory / CONFIG_FILE, directory / WEIGHTS_FILE
    for path in (config_path, weights_path):
        if not path.is_file():
            raise CheckpointError(f"{path}: missing; a kpr checkpoint holds {CONFIG_FILE} and {WEIGHTS_FILE}")
    try:
        document = json.loads(config_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{config_path}: not valid JSON ({exc})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise CheckpointError(f"{config_path}: field 'format' must be {FORMAT!r}")
    try:
        config = from_dict(KPRConfig, document.get("model"), where=f"{config_path}: model")
    except ConfigError as exc:
        raise CheckpointError(str(exc)) from None
    try:
        state_dict = load_file(str(weights_path))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{weights_path}: not a readable safetensors file ({exc})") from None
    return KPRCheckpoint(config, state_dict, document.get("metadata") or {})


def load_weights(model: torch.nn.Module, state_dict: dict[str, torch.Tensor], source: str | Path) -> None:
    """``load_state_dict(strict=True)`` with an error that names the tensors that don't fit."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    wrong = [
        f"{k}: checkpoint {list(state_dict[k].shape)} vs model {list(own[k].shape)}"
        for k in own
        if k in state_dict and state_dict[k].shape != own[k].shape
    ]
    problems = []
    if wrong:
        problems.append("wrong shape: " + "; ".join(wrong[:5]))
    if missing:
        problems.append(f"missing {len(missing)} tensor(s), e.g. {missing[:3]}")
    if unexpected:
        problems.append(f"unexpected {len(unexpected)} tensor(s), e.g. {unexpected[:3]}")
    if problems:
        raise CheckpointError(f"{source}: checkpoint does not fit the model: " + " | ".join(problems))
    model.load_state_dict(state_dict, strict=True)
