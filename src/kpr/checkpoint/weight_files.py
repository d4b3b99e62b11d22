"""Reading tensors from files kpr did not write, without ever running code from them.

Torch files are read with ``torch.load(weights_only=True)`` and an allowlist of exactly the
globals the official KPR and SOLIDER files reference: yacs' ``CfgNode`` is mapped onto
``OrderedDict`` (it is a dict subclass whose extra state is plain data), so neither yacs nor any
other code is imported or run. A pickle naming anything else is refused before it executes.
"""

from __future__ import annotations

import argparse
import collections
import importlib
import pickle
import re
import struct
import sys
import warnings
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch.serialization import safe_globals

from kpr.errors import CheckpointError

_NUMPY_DTYPES = (
    "bool",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "float16",
    "float32",
    "float64",
)
# What torch.load raises on bytes that are not a torch file (found by fuzzing truncated, corrupted
# and random files); none of them means code was about to run.
_UNREADABLE = (
    RuntimeError,
    EOFError,
    OSError,
    ValueError,
    KeyError,
    IndexError,
    TypeError,
    AttributeError,
    struct.error,
    zipfile.BadZipFile,
)
_REFUSED_GLOBAL = re.compile(r"GLOBAL (\S+)")


# Where numpy keeps the reconstructor of pickled numpy scalars: ``numpy._core.multiarray`` since
# numpy 2, ``numpy.core.multiarray`` before (numpy 1.x has no ``numpy._core.multiarray``; numpy 2
# still answers the old name, with a DeprecationWarning). Files name either, by the numpy that
# wrote them; both names are allowed and mapped onto the function of the numpy installed.
_SCALAR_MODULES = ("numpy._core.multiarray", "numpy.core.multiarray")


def numpy_scalar_reconstructor() -> Any:
    """numpy's ``multiarray.scalar`` (what pickled numpy scalars call), on numpy 1.x and 2.x."""
    for name in _SCALAR_MODULES:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                module = importlib.import_module(name)
        except ImportError:
            continue
        scalar = getattr(module, "scalar", None)
        if scalar is not None:
            return scalar
    raise CheckpointError(f"numpy {np.__version__}: found no multiarray.scalar to read numpy data")


def _allowed_globals() -> list[Any]:
    scalar = numpy_scalar_reconstructor()
    return [
        (collections.OrderedDict, "yacs.config.CfgNode"),
        (scalar, "numpy.core.multiarray.scalar"),
        (scalar, "numpy._core.multiarray.scalar"),
        np.dtype,
        *(type(np.dtype(name)) for name in _NUMPY_DTYPES),
    ]


def _refused_global(message: str) -> str | None:
    """The global a weights-only unpickling error names, if it is a real one.

    A truncated or corrupted pickle also trips over a "global" — a cut or garbled name such as
    ``torch.FloatSto`` — so a name is taken as refused code only if it is made of identifiers and,
    where its module is already imported, resolves there (nothing is imported to check).
    """
    match = _REFUSED_GLOBAL.search(message)
    if match is None:
        return None
    name = match.group(1)
    parts = name.split(".")
    if len(parts) < 2 or not all(p.isidentifier() for p in parts):
        return None
    for split in range(len(parts) - 1, 0, -1):
        module = sys.modules.get(".".join(parts[:split]))
        if module is not None:
            node: Any = module
            for attr in parts[split:]:
                node = getattr(node, attr, None)
                if node is None:
                    return None
            return name
    return name


def _unreadable(path: Path, exc: BaseException) -> CheckpointError:
    """The error for bytes torch cannot parse, with the first sentence of torch's reason (never
    its advice, which can be to load the file unsafely)."""
    text = str(exc).split("WeightsUnpickler error:")[-1]
    lines = [line.strip() for line in text.splitlines()]
    kept = [line for line in lines if line and "weights_only" not in line]
    reason = type(exc).__name__ + (": " + kept[0].split(". ")[0].rstrip(".") if kept else "")
    return CheckpointError(
        f"{path}: not a readable torch checkpoint (truncated, corrupt or another format: {reason})"
    )


def safe_torch_load(path: str | Path, extra_globals: Iterable[Any] = ()) -> Any:
    """``torch.load`` a file on CPU with ``weights_only=True``, allowing the official globals only.

    ``extra_globals`` are further classes the caller knows to be plain data.

    Raises
    ------
    CheckpointError
        If the file is missing, is not a torch file (random bytes, truncated, text…), or its pickle
        names a global outside the allowlist (refused before any of it runs).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        with safe_globals([*_allowed_globals(), *extra_globals]), warnings.catch_warnings():
            # Random bytes make torch warn about an unknown pickle protocol before failing.
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        name = _refused_global(str(exc))
        if name is None:
            raise _unreadable(path, exc) from None
        raise CheckpointError(
            f"{path}: refused: its pickle calls or builds {name!r}, which is not tensor data. kpr "
            "reads only tensors, plain data and the official config from a checkpoint, and never "
            "unpickles code; nothing from this file was run"
        ) from None
    except _UNREADABLE as exc:
        raise _unreadable(path, exc) from None


def read_weight_file(path: str | Path) -> Any:
    """The object stored in a local ``.safetensors`` file or torch file (read safely)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: weight file not found")
    if path.suffix == ".safetensors":
        try:
            return load_file(str(path), device="cpu")
        except (SafetensorError, OSError) as exc:
            raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from None
    # Self-supervised (DINO-style) training files such as SOLIDER's also pickle their argparse
    # options; a Namespace only carries plain attributes, so it is safe to rebuild.
    return safe_torch_load(path, extra_globals=[argparse.Namespace])


def strip_module(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Remove the ``module.`` prefix (DataParallel / DistributedDataParallel) from every key."""
    return {key.removeprefix("module."): value for key, value in state.items()}


def unwrap_state_dict(obj: Any, source: str | Path = "checkpoint") -> dict[str, torch.Tensor]:
    """The tensors of a loaded weight file: ``teacher`` if present, then ``state_dict``, ``model``
    and ``module`` in turn where they hold a dict; every entry must be a tensor."""
    if isinstance(obj, Mapping) and isinstance(obj.get("teacher"), Mapping):
        obj = obj["teacher"]
    for key in ("state_dict", "model", "module"):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(f"{source}: expected a non-empty dict of tensors")
    for key, value in obj.items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(
                f"{source}: entry {key!r} is a {type(value).__name__}, not a tensor"
            )
    return dict(obj)


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a local weight file, unwrapped and with ``module.`` stripped."""
    return strip_module(unwrap_state_dict(read_weight_file(path), path))
