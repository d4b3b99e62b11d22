"""ONNX export of KPR models and the ONNX Runtime session that runs them (docs/export.md).

Needs the ``onnx`` extra (``pip install "kpr[onnx]"``); imported lazily so that ``kpr`` and its
CLI work without it.
"""

from __future__ import annotations

from typing import Any

from kpr.export.format import DEFAULT_OPSET

__all__ = ["DEFAULT_OPSET", "OnnxSession", "export_onnx", "export_onnx_bytes"]


def __getattr__(name: str) -> Any:
    if name in ("export_onnx", "export_onnx_bytes"):
        from kpr.export import onnx_export

        return getattr(onnx_export, name)
    if name == "OnnxSession":
        from kpr.export.session import OnnxSession

        return OnnxSession
    raise AttributeError(f"module 'kpr.export' has no attribute {name!r}")
