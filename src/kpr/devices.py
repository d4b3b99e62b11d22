"""Where a model runs: device names checked before any tensor is moved."""

from __future__ import annotations

import torch

from kpr.errors import KPRError


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None``/``"auto"`` → CUDA if available, else MPS, else CPU; an explicit device must exist.

    Raises
    ------
    KPRError
        For an unknown device name, or a CUDA/MPS device this machine does not have.
    """
    if device is None or device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise KPRError(
            f"device: {device!r} is not a device (expected cpu, cuda, cuda:N, mps or auto)"
        ) from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise KPRError(f"device: {device!r} requested, but this machine has no usable CUDA GPU")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise KPRError(
                f"device: {device!r} requested, but there are "
                f"{torch.cuda.device_count()} CUDA device(s)"
            )
    elif resolved.type == "mps" and not _mps_available():
        raise KPRError(f"device: {device!r} requested, but MPS is not available here")
    elif resolved.type not in ("cpu", "cuda", "mps"):
        raise KPRError(
            f"device: {device!r} is not supported (expected cpu, cuda, cuda:N, mps or auto)"
        )
    return resolved


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return mps is not None and mps.is_available()
