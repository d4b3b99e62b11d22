"""Machine facts printed with every benchmark result, so numbers from different CPUs are never
compared by mistake (bf16 is ×2.5 faster than fp32 on one of this project's CPUs, ×1.8 slower on
the other)."""

from __future__ import annotations

import os

import torch

from kpr.cpu import cpu_features
from kpr.modeling.linear import cpu_linear_backend


def machine_facts() -> str:
    """One line: CPU model, the flags that decide the fast paths, cores, threads, torch, and the
    CPU GEMM library kpr's inference linears chose here."""
    return (
        f"machine: {cpu_features().describe()}; {os.cpu_count()} cores, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}, "
        f"inference linears on {cpu_linear_backend()}"
    )


def machine_tag() -> str:
    """A short tag for each result line: CPU model and bf16/VNNI."""
    cpu = cpu_features()
    return f"[{cpu.model} bf16={'y' if cpu.bf16 else 'n'} vnni={'y' if cpu.vnni else 'n'}]"
