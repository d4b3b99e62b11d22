"""Every Linear layer of a KPR model on oneDNN for float32 CPU inference.

PyTorch's CPU ``F.linear`` calls MKL, which picks its tuned kernels by CPU *vendor*: on AMD and
Hygon CPUs it runs generic code, 1.1–3× slower than oneDNN on the same products (AMD EPYC Zen 4),
while oneDNN picks its kernels by instruction set. On an Intel Xeon, where MKL is tuned, oneDNN was
still ×1.05–1.11 faster at batch 1 on Swin-B and at the recipes' evaluation batch, and within ±3 %
at batch 16 (docs/performance.md). So wherever MKL is PyTorch's BLAS and the oneDNN op exists (x86
builds), kpr runs its inference linears on oneDNN (:func:`cpu_linear_backend`). A timed choice
was tried and dropped: on this shared 2-core machine a 0.2 s calibration measured the same pair
anywhere from ×0.95 to ×1.65. oneDNN's call costs ~10–15 µs more, so only products of at least
:data:`ONEDNN_MIN_MACS` go there.

Only inference uses oneDNN: the op has no autograd formula, and under ``torch.export`` /
``torch.compile`` or CPU autocast (the bf16 path) the layer stays ``F.linear`` so those see the
standard op. Both compute in float32; only the summation order differs (Swin-B embeddings within
1.1e-6 of the official graph's on MKL).
"""

from __future__ import annotations

import contextlib
import functools
import os
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

_forced: ContextVar[Backend | None] = ContextVar("kpr_cpu_linear", default=None)


def _onednn_op_available() -> bool:
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


def _onednn_linear(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")


@functools.cache
def _default_backend() -> Backend:
    if torch.backends.mkl.is_available() and _onednn_op_available():
        return "onednn"
    return "aten"


def cpu_linear_backend() -> Backend:
    """The float32 GEMM library for CPU inference: :func:`use_cpu_linear`'s, else the
    ``KPR_CPU_LINEAR`` environment variable's (``aten`` or ``onednn``), else ``onednn`` where MKL
    is PyTorch's BLAS and the oneDNN op exists (x86 builds), ``aten`` elsewhere (ARM, …).

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
    return _default_backend()


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
    replacements keep their own forward) at :func:`linear`. The state dict is unchanged.
    A bad ``KPR_CPU_LINEAR`` fails here, when the model is built, not at its first large product.
    """
    cpu_linear_backend()
    for module in model.modules():
        if type(module) is nn.Linear:
            module.forward = functools.partial(_linear_layer_forward, module)


__all__ = ["cpu_linear_backend", "linear", "route_linear_layers", "use_cpu_linear"]
