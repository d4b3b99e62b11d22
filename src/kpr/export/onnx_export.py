"""KPR model → a self-contained ``.onnx`` file (or its bytes) that :class:`OnnxSession` runs.

The file holds one graph (:class:`~kpr.export.graph.ExportGraph`) with a dynamic batch dimension
and the model's weights, plus metadata: the model configuration (``kpr.config``, JSON), a
fingerprint of its weights (``kpr.weights_sha256``) and the kpr version, so that a session can
rebuild the pre-processing and refuse a file made from another model.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import warnings
from pathlib import Path

import onnx
import torch

from kpr.checkpoint.fingerprint import weights_fingerprint
from kpr.configuration import to_dict
from kpr.errors import KPRError
from kpr.export.format import (
    CONFIG_KEY,
    DEFAULT_OPSET,
    FINGERPRINT_KEY,
    INPUTS,
    MIN_OPSET,
    OUTPUTS,
    VERSION_KEY,
)
from kpr.export.graph import ExportGraph, sdpa_any_rank
from kpr.io_utils import write_bytes_atomic
from kpr.modeling.kpr import KPR

_EXAMPLE_BATCH = 2  # a batch of 1 would let the exporter specialise the batch dimension to 1
_CHATTY_LOGGERS = ("onnxscript", "onnx_ir", "torch.onnx")  # one INFO line per rewrite


@contextlib.contextmanager
def _quiet_exporter():
    """Silence the exporter's progress prints, warnings and logs below errors (thousands of INFO
    lines, and onnx_ir's WARNING about empty attribute lists, which it types correctly as ints:
    the parity tests hold)."""
    loggers = [logging.getLogger(name) for name in _CHATTY_LOGGERS]
    levels = [logger.level for logger in loggers]
    try:
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def export_onnx_bytes(model: KPR, opset: int = DEFAULT_OPSET) -> bytes:
    """Serialised ONNX model of ``model`` (eval mode, CPU, float32), with kpr metadata.

    Takes ≈ 15–25 s for the test fixtures and longer for Swin-B on a 2-core CPU: the exporter
    traces the whole model with torch.export.
    """
    if not isinstance(opset, int) or not MIN_OPSET <= opset <= onnx.defs.onnx_opset_version():
        raise KPRError(
            f"opset: expected an integer in [{MIN_OPSET}, {onnx.defs.onnx_opset_version()}] "
            f"(the exporter emits opset {MIN_OPSET} or newer), got {opset!r}"
        )
    if model.config.head == "global":
        # The exported graph's outputs include the part maps, which a global head does not have.
        raise KPRError("export: global-embedding models (head 'global') are not supported")
    from kpr import __version__

    model = model.float().cpu().eval()
    config = model.config
    h, w = config.image_size
    example = (
        torch.zeros(_EXAMPLE_BATCH, 3, h, w),
        torch.zeros(_EXAMPLE_BATCH, config.prompt_channels, h, w),
        torch.zeros(_EXAMPLE_BATCH, dtype=torch.long),
    )
    names = INPUTS if model.camera_embedding is not None else INPUTS[:2]
    batch = torch.export.Dim("batch", min=1)
    with torch.no_grad(), _quiet_exporter():
        program = torch.onnx.export(
            ExportGraph(model).eval(),
            example[: len(names)],
            input_names=list(names),
            output_names=list(OUTPUTS),
            opset_version=opset,
            dynamo=True,
            dynamic_shapes={name: {0: batch} for name in names},
            custom_translation_table={
                torch.ops.aten.scaled_dot_product_attention.default: sdpa_any_rank
            },
        )
    proto = program.model_proto
    meta = {
        CONFIG_KEY: json.dumps(to_dict(config), sort_keys=True),
        FINGERPRINT_KEY: weights_fingerprint(model),
        VERSION_KEY: __version__,
    }
    for key, value in meta.items():
        proto.metadata_props.add(key=key, value=value)
    return proto.SerializeToString()


def check_onnx_out(out: str | os.PathLike[str], overwrite: bool) -> Path:
    """Refuse an output path that is not a ``.onnx`` file, a directory, or (without
    ``overwrite``) an existing file."""
    path = Path(out)
    if path.suffix.lower() != ".onnx":
        raise KPRError(f"{path}: expected a .onnx file path")
    if path.is_dir():
        raise KPRError(f"{path}: is a directory; expected a .onnx file path")
    if path.exists() and not overwrite:
        raise KPRError(f"{path}: already exists (pass --overwrite / overwrite=True to replace it)")
    return path


def export_onnx(
    model: KPR,
    out: str | os.PathLike[str],
    *,
    opset: int = DEFAULT_OPSET,
    overwrite: bool = False,
) -> Path:
    """Export ``model`` to the ``.onnx`` file ``out``, written atomically.

    Raises
    ------
    KPRError
        If ``out`` does not end in ``.onnx``, is a directory, or exists (without ``overwrite``);
        checked before the (slow) export.
    """
    path = check_onnx_out(out, overwrite)
    data = export_onnx_bytes(model, opset)
    write_bytes_atomic(path, data)
    return path
