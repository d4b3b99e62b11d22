"""The contract of a kpr ``.onnx`` file: opset, input/output names, metadata keys.

Kept free of onnx/onnxruntime imports so the CLI can describe ``kpr export`` without them.
"""

from __future__ import annotations

import hashlib

import torch
from torch import nn

DEFAULT_OPSET = 18
"""ONNX opset of exported files: the lowest the torch.export-based exporter emits, which ONNX
Runtime ≥ 1.14 runs."""
MIN_OPSET = 18
INPUTS = ("images", "prompts", "cameras")
"""images [N, 3, H, W] float32, prompts [N, Cp, H, W] float32, cameras [N] int64 (SIE models
only; label ``num_cameras`` = no camera)."""
OUTPUTS = ("embeddings", "visibility", "part_masks")
"""embeddings [N, 1+K, D] float32 raw (not L2-normalised), visibility [N, 1+K] bool (or float
scores), part_masks [N, K+1, H/4, W/4] float32."""
CONFIG_KEY = "kpr.config"
FINGERPRINT_KEY = "kpr.weights_sha256"
VERSION_KEY = "kpr.version"


def weights_fingerprint(model: nn.Module) -> str:
    """SHA-256 of every parameter and buffer (names, dtypes, shapes, values), to tell whether an
    exported file was made from this model. ≈0.3 s for Swin-B's 350 MB."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
