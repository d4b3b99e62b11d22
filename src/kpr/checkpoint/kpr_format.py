"""kpr's own checkpoint format: a directory with ``model.safetensors`` and ``config.json``.

The files are written into a temporary directory that is renamed into place, so a checkpoint is
either complete or absent. The config is also embedded in the safetensors metadata, so the weight
file alone still says what it is.

Writing never deletes or hides anything kpr did not write: an existing target is replaced only if
it is a previous kpr checkpoint (a directory holding nothing but :data:`KPR_FILES`, its
``config.json`` carrying the format marker); a regular file is replaced only with ``overwrite``;
a directory holding anything else is always refused.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import stat
import typing
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from kpr.configuration import from_dict, to_dict
from kpr.errors import CheckpointError, ConfigError
from kpr.io_utils import current_umask, make_temp_dir, replace_path
from kpr.modeling.config import KPRConfig

FORMAT = "kpr-checkpoint/1"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
# Added by kpr.engine.training_state through ``write_extra`` (a test keeps the names in sync).
TRAINING_STATE_FILES = ("training_state.safetensors", "training_state.json")
# Every file a kpr checkpoint directory may hold; only these are ever removed when replacing one.
KPR_FILES = frozenset({WEIGHTS_FILE, CONFIG_FILE, *TRAINING_STATE_FILES})
# Model fields added after checkpoints of this format were first written: a config without one is
# from before it existed, when every model had its default (keypoint prompts, part-based head).
FIELDS_ADDED_LATER = frozenset({"model.prompt_type", "model.head"})


@dataclass(frozen=True)
class KPRCheckpoint:
    """A model config, its tensors and free-form metadata (source, epoch, metrics…)."""

    config: KPRConfig
    state_dict: dict[str, torch.Tensor]
    metadata: dict[str, Any] = field(default_factory=dict)


def _is_kpr_config(path: Path) -> bool:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(document, dict) and document.get("format") == FORMAT


def _is_regular_file(path: Path) -> bool:
    return stat.S_ISREG(path.lstat().st_mode)


def _shown(names: list[str]) -> str:
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def _plan(target: Path, overwrite: bool) -> Literal["create", "fill", "replace"]:
    """How to put a checkpoint at ``target``: create it, fill an empty directory, or replace.

    Raises :class:`CheckpointError` for a target kpr must not touch.
    """
    if not target.exists():
        return "create"
    if not target.is_dir():
        if not _is_regular_file(target):
            raise CheckpointError(f"{target}: exists and is neither a regular file nor a directory")
        if overwrite:
            return "replace"
        raise CheckpointError(
            f"{target}: exists and is a file; pass overwrite=True (kpr convert --overwrite) to "
            "replace it with a checkpoint directory"
        )
    names = sorted(os.listdir(target))
    if not names:
        return "fill"
    foreign = [n for n in names if n not in KPR_FILES or not _is_regular_file(target / n)]
    if not foreign and _is_kpr_config(target / CONFIG_FILE):
        if target == Path.cwd():
            # Replacing renames directories: the shell would be left in a deleted one.
            raise CheckpointError(
                f"{target}: is the current directory; kpr replaces a checkpoint by renaming "
                "directories, which would leave you in a deleted one: write to another path"
            )
        return "replace"
    reason = (
        f"holds files kpr did not write ({_shown(foreign)})"
        if foreign
        else f'is not a kpr checkpoint ({CONFIG_FILE} lacks "format": "{FORMAT}")'
    )
    raise CheckpointError(
        f"{target}: exists and {reason}. kpr replaces a directory only if it holds nothing but a "
        "kpr checkpoint, and never deletes files it did not write, even with overwrite: choose a "
        "new or empty directory"
    )


def _discard(old: Path) -> None:
    """Remove a replaced target: a file, or a directory's kpr files (anything else stays)."""
    if not old.is_dir():
        old.unlink()
        return
    for name in KPR_FILES:
        path = old / name
        if path.exists() and _is_regular_file(path):
            path.unlink()
    try:
        old.rmdir()
    except OSError:
        # Someone added a file while the checkpoint was being replaced: keep it, and say where.
        warnings.warn(
            f"{old}: kept; the replaced checkpoint now holds files kpr did not write "
            f"({_shown(sorted(os.listdir(old)))})",
            stacklevel=3,
        )


def _fill(tmp: Path, target: Path) -> None:
    """Move the files of ``tmp`` into the empty directory ``target``, ``config.json`` last, so a
    reader never sees a config without its weights; the directory itself (owner, mode) stays."""
    names = sorted(os.listdir(tmp), key=lambda name: name == CONFIG_FILE)
    moved: list[Path] = []
    try:
        for name in names:
            os.replace(tmp / name, target / name)
            moved.append(target / name)
    except BaseException:
        for path in moved:
            path.unlink(missing_ok=True)
        raise


def save_kpr_checkpoint(
    directory: str | Path,
    config: KPRConfig,
    state_dict: Mapping[str, torch.Tensor],
    metadata: dict[str, Any] | None = None,
    write_extra: Callable[[Path], None] | None = None,
    *,
    overwrite: bool = False,
) -> Path:
    """Write a checkpoint directory atomically.

    Parameters
    ----------
    directory:
        Where the checkpoint goes (symbolic links are followed). It may be absent, an empty
        directory (filled in place) or a previous kpr checkpoint (replaced, atomically on Linux).
    write_extra:
        ``write_extra(tmp_dir)`` may add files named in :data:`KPR_FILES` (e.g. training state)
        before the checkpoint is put in place.
    overwrite:
        Also replace a regular file at ``directory``.

    Raises
    ------
    CheckpointError
        If ``directory`` is a file (without ``overwrite``), a directory holding anything that is
        not a kpr checkpoint (even with ``overwrite``), or cannot be written.
    """
    target = Path(directory).resolve()
    plan = _plan(target, overwrite)
    document = {"format": FORMAT, "model": to_dict(config), "metadata": metadata or {}}
    text = json.dumps(document, indent=2, sort_keys=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
    try:
        if plan == "fill":
            # Inside the target: its parent may not be writable (e.g. ``kpr convert x.pth.tar .``).
            tmp = make_temp_dir(target, prefix=".kpr-checkpoint.")
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = make_temp_dir(target.parent, prefix=f".{target.name}.")
    except OSError as exc:
        raise CheckpointError(f"{target}: cannot write a checkpoint here ({exc})") from None
    old: Path | None = None
    try:
        save_file(tensors, str(tmp / WEIGHTS_FILE), metadata={"format": FORMAT, "config": text})
        if write_extra is not None:
            write_extra(tmp)
        unknown = sorted(set(os.listdir(tmp)) - KPR_FILES)
        if unknown:
            raise CheckpointError(
                f"{target}: write_extra wrote {unknown}; a checkpoint may only hold "
                f"{sorted(KPR_FILES)} (so that kpr recognises it as its own when replacing it)"
            )
        (tmp / CONFIG_FILE).write_text(text + "\n", encoding="utf-8")
        # safetensors creates its files 0600 whatever the umask.
        file_mode = 0o666 & ~current_umask()
        for name in os.listdir(tmp):
            os.chmod(tmp / name, file_mode)
        if plan == "create":
            os.rename(tmp, target)
        elif plan == "fill":
            _fill(tmp, target)
        else:
            old = replace_path(tmp, target)
    except (OSError, SafetensorError) as exc:
        raise CheckpointError(f"{target}: cannot write the checkpoint ({exc})") from None
    finally:
        # Left over only if the checkpoint was not put in place (or tmp was the empty fill dir).
        if old != tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    if old is not None:
        _discard(old)
    return Path(directory)


def _missing_fields(cls: type, data: Mapping[str, Any], where: str) -> list[str]:
    """Dotted names of the fields of dataclass ``cls`` (and of nested ones) absent from ``data``."""
    hints = typing.get_type_hints(cls)
    missing = []
    for f in dataclasses.fields(cls):
        if f.name not in data:
            missing.append(f"{where}.{f.name}")
        elif dataclasses.is_dataclass(hints[f.name]) and isinstance(data[f.name], Mapping):
            missing += _missing_fields(hints[f.name], data[f.name], f"{where}.{f.name}")
    return missing


def _training_run_hint(directory: Path) -> str:
    """Where the checkpoints are when ``directory`` is a training run's output directory."""
    saved = [
        directory / "checkpoints" / name
        for name in ("best", "last")
        if (directory / "checkpoints" / name / CONFIG_FILE).is_file()
    ]
    if not saved:
        return ""
    return f" ({directory} is a training run: use {' or '.join(map(str, saved))})"


def read_kpr_checkpoint(directory: str | Path) -> KPRCheckpoint:
    """Read a checkpoint directory written by :func:`save_kpr_checkpoint`.

    Every model setting must be stored: a default standing in for a missing one (image size,
    normalisation…) would silently change the model's results.
    """
    directory = Path(directory)
    config_path, weights_path = directory / CONFIG_FILE, directory / WEIGHTS_FILE
    for path in (config_path, weights_path):
        if not path.is_file():
            raise CheckpointError(
                f"{path}: missing; a kpr checkpoint holds {CONFIG_FILE} and {WEIGHTS_FILE}"
                + _training_run_hint(directory)
            )
    try:
        document = json.loads(config_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{config_path}: not valid JSON ({exc})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise CheckpointError(f"{config_path}: field 'format' must be {FORMAT!r}")
    model = document.get("model")
    if isinstance(model, Mapping):
        missing = [
            f for f in _missing_fields(KPRConfig, model, "model") if f not in FIELDS_ADDED_LATER
        ]
        if missing:
            raise CheckpointError(
                f"{config_path}: field(s) {', '.join(missing)} missing; a kpr checkpoint stores "
                "every model setting, because a default would silently change the model"
            )
    try:
        config = from_dict(KPRConfig, model, where=f"{config_path}: model")
    except ConfigError as exc:
        raise CheckpointError(str(exc)) from None
    try:
        state_dict = load_file(str(weights_path))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{weights_path}: not a readable safetensors file ({exc})") from None
    return KPRCheckpoint(config, state_dict, document.get("metadata") or {})


def check_fits(
    model: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], source: str | Path
) -> None:
    """Raise a :class:`CheckpointError` naming the tensors that don't fit ``model`` (names and
    shapes; ``model`` may live on the ``meta`` device)."""
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
        raise CheckpointError(
            f"{source}: checkpoint does not fit the model: " + " | ".join(problems)
        )


def load_weights(
    model: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], source: str | Path
) -> None:
    """``load_state_dict(strict=True)`` with an error that names the tensors that don't fit."""
    check_fits(model, state_dict, source)
    model.load_state_dict(state_dict, strict=True)
