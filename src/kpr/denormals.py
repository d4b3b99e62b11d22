"""Flush subnormal floats to zero on the CPU.

The shifted-window attention masks cross-region pairs with -100 (the official value), so the
softmax gives those pairs probabilities of about exp(-100) ≈ 3.7e-44: subnormal float32 values.
Intel CPUs take a slow microcode path for arithmetic on a subnormal operand (not measured on this
project's AMD EPYC), and the explicit attention products of training multiply these probabilities
forward and backward. On an Intel Xeon (Sapphire Rapids class) a training step of the demo model
ran ×1.4 faster with subnormals flushed (docs/performance.md). Flushing changes only values whose
magnitude is below 1.2e-38, far under float32 rounding of anything the model computes.

The setting (the x86 FTZ and DAZ bits) belongs to each thread, and a thread inherits it from the
thread that creates it: it must be set before PyTorch starts its worker threads, i.e. before the
first parallel operation. kpr's command line sets it first thing and gives the caller's mode back
when the verb returns (for programs calling ``kpr.cli.main``); the training processes it spawns set
it too. A Python program that trains can call :func:`flush_denormals` at its start.

Creating an ONNX Runtime session resets the creating thread's setting (ORT's
``session.set_denormal_as_zero`` defaults to off); :class:`kpr.export.OnnxSession` keeps the
process's setting across it with :func:`flush_mode_kept` and gives ORT's own threads the same.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


def flush_denormals() -> bool:
    """Flush subnormal floats to zero in this thread and the threads it creates from now on;
    ``False`` where the CPU cannot (nothing is changed there). The setting covers float64 too
    (Python and numpy floats on this thread)."""
    return torch.set_flush_denormal(True)


def subnormals_flushed() -> bool:
    """Whether this thread flushes subnormal results to zero now (a one-element division, which
    runs on the calling thread)."""
    return (torch.tensor([1e-38]) / 1e3).item() == 0.0


@contextlib.contextmanager
def flush_mode_kept() -> Iterator[bool]:
    """This thread's subnormal mode (yielded) as it was before the block, whatever the block's
    code sets."""
    flushed = subnormals_flushed()
    try:
        yield flushed
    finally:
        if subnormals_flushed() != flushed:
            torch.set_flush_denormal(flushed)


__all__ = ["flush_denormals", "flush_mode_kept", "subnormals_flushed"]
