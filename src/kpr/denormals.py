"""Flush subnormal floats to zero on the CPU.

The shifted-window attention masks cross-region pairs with -100 (the official value), so the
softmax gives those pairs probabilities of about exp(-100) ≈ 3.7e-44: subnormal float32 values.
Intel CPUs take a slow microcode path for every arithmetic operation on a subnormal operand (AMD
Zen 4 barely does), and the explicit attention products of training multiply these probabilities
forward and backward. On an Intel Xeon (Sapphire Rapids class) a training step of the demo model
ran ×1.4 faster with subnormals flushed (docs/performance.md). Flushing changes only values whose
magnitude is below 1.2e-38, far under float32 rounding of anything the model computes.

The setting (the x86 FTZ and DAZ bits) belongs to each thread, and a thread inherits it from the
thread that creates it: it must be set before PyTorch starts its worker threads, i.e. before the
first parallel operation. kpr's command line and the processes it spawns set it first thing; a
Python program that trains can call :func:`flush_denormals` at its start.
"""

from __future__ import annotations

import functools

import torch


@functools.cache
def flush_denormals() -> bool:
    """Flush subnormal floats to zero in this thread and the threads it creates from now on;
    ``False`` where the CPU cannot (nothing is changed there). Idempotent."""
    return torch.set_flush_denormal(True)


__all__ = ["flush_denormals"]
