"""Every Linear layer of a KPR model on the CPU's faster float32 GEMM library.

PyTorch's CPU ``F.linear`` calls MKL, whose AVX-512 kernels are chosen by CPU *vendor*: on AMD
EPYC (Zen 4, AVX-512) it runs 1.1–3× slower than oneDNN on the same shapes (docs/performance.md),
while oneDNN picks its kernels by instruction set. oneDNN's call costs ~10–15 µs more, so it only
pays on larger products. Which library is faster is measured once per process
(:func:`cpu_linear_backend`): the choice holds on every CPU kind, including those where MKL wins.

Only inference uses oneDNN: the op has no autograd formula, and under ``torch.export`` /
``torch.compile`` or CPU autocast (the bf16 path) the layer stays ``F.linear`` so those see the
standard op. Both libraries compute in float32 (differences ≤ 1e-6 relative, summation order).
"""

from __future__ import annotations

import contextlib
import functools
import os
import statistics
import time
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kpr.errors import KPRError

Backend = Literal["aten", "onednn"]
BACKENDS: tuple[Backend, ...] = ("aten", "onednn")
ENV_VAR = "KPR_CPU_LINEAR"
ONEDNN_MIN_MACS = 1 << 25
"""Smallest product (rows × in × out multiply-adds) sent to oneDNN: below ≈ 3·10⁷ its extra call
cost outweighs the faster kernel (measured crossover on AMD Zen 4, docs/performance.md)."""
SPEED_MARGIN = 1.10
"""oneDNN must be this much faster on the calibration products to be chosen: where the two are
close (as expected on Intel CPUs) timing noise must not flip the choice between processes."""
CALIBRATION_SHAPES = ((192, 512, 2048), (768, 256, 1024), (8192, 64, 192))
"""(rows, in, out): a Swin-B stage-3 MLP at batch 1, a stage-2 one, a tiny model's at batch 16."""

_forced: ContextVar[Backend | None] = ContextVar("kpr_cpu_linear", default=None)


def _onednn_op_available() -> bool:
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


def _onednn_linear(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")


def choose_backend(aten_seconds: float, onednn_seconds: float) -> Backend:
    """oneDNN when it is at least :data:`SPEED_MARGIN` faster on the calibration, else aten."""
    return "onednn" if aten_seconds >= SPEED_MARGIN * onednn_seconds else "aten"


def _time_backends(rounds: int = 5) -> tuple[float, float]:
    """Summed medians (aten, oneDNN) of the calibration products, interleaved rounds."""
    generator = torch.Generator().manual_seed(0)
    cases = [
        tuple(torch.randn(*shape, generator=generator) for shape in ((m, k), (n, k), (n,)))
        for m, k, n in CALIBRATION_SHAPES
    ]
    totals = [0.0, 0.0]
    with torch.no_grad():
        for x, w, b in cases:
            times: list[list[float]] = [[], []]
            for r in range(rounds + 1):  # the first round warms up
                for i, fn in enumerate((F.linear, _onednn_linear)):
                    start = time.perf_counter()
                    fn(x, w, b)
                    if r:
                        times[i].append(time.perf_counter() - start)
            for i in range(2):
                totals[i] += statistics.median(times[i])
    return totals[0], totals[1]


@functools.cache
def _measured_backend(threads: int) -> Backend:
    del threads  # the cache key: relative speed can change with the thread count
    if not _onednn_op_available():
        return "aten"
    return choose_backend(*_time_backends())


def cpu_linear_backend() -> Backend:
    """The float32 GEMM library for CPU inference: :func:`use_cpu_linear`'s, else the
    ``KPR_CPU_LINEAR`` environment variable's (``aten`` or ``onednn``), else the faster one
    measured on this machine (once per process and thread count, ≈ 0.1 s).

    Raises
    ------
    KPRError
        For a ``KPR_CPU_LINEAR`` that is neither ``aten`` nor ``onednn``, or ``onednn`` in a
        PyTorch build without it.
    """
    forced = _forced.get()
    if forced is not None:
        return forced
    raw = os.environ.get(ENV_VAR, "").strip().lower()
    if raw:
        if raw not in BACKENDS:
            raise KPRError(f"{ENV_VAR}: expected 'aten' or 'onednn', got {raw!r}")
        if raw == "onednn" and not _onednn_op_available():
            raise KPRError(f"{ENV_VAR}=onednn: this PyTorch build has no oneDNN linear")
        return raw  # type: ignore[return-value]
    return _measured_backend(torch.get_num_threads())


@contextlib.contextmanager
def use_cpu_linear(backend: Backend) -> Iterator[None]:
    """Run this thread's CPU inference linears on ``backend`` inside the block."""
    if backend not in BACKENDS:
        raise KPRError(f"cpu linear backend: expected 'aten' or 'onednn', got {backend!r}")
    token = _forced.set(backend)
    try:
        yield
    finally:
        _forced.reset(token)


def _onednn_applies(x: Tensor, weight: Tensor) -> bool:
    if (
        x.device.type != "cpu"
        or x.dtype != torch.float32
        or weight.dtype != torch.float32
        or torch.is_grad_enabled()
        or torch.is_autocast_enabled("cpu")
        or torch.compiler.is_compiling()
        or weight.is_sparse
    ):
        return False
    rows = x.numel() // max(x.shape[-1], 1)
    return rows * weight.shape[0] * weight.shape[1] >= ONEDNN_MIN_MACS


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``F.linear`` (x [..., in], weight [out, in], bias [out] → [..., out]), on oneDNN for large
    float32 CPU products without autograd when :func:`cpu_linear_backend` says it is faster."""
    if _onednn_applies(x, weight) and cpu_linear_backend() == "onednn":
        return _onednn_linear(x, weight, bias)
    return F.linear(x, weight, bias)


def _linear_layer_forward(layer: nn.Linear, x: Tensor) -> Tensor:
    return linear(x, layer.weight, layer.bias)


def route_linear_layers(model: nn.Module) -> None:
    """Point every ``nn.Linear`` of ``model`` (exactly that class, so int8-quantized or other
    replacements keep their own forward) at :func:`linear`. The state dict is unchanged."""
    for module in model.modules():
        if type(module) is nn.Linear:
            module.forward = functools.partial(_linear_layer_forward, module)


__all__ = ["cpu_linear_backend", "linear", "route_linear_layers", "use_cpu_linear"]
