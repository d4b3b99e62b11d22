"""The contract of a kpr ``.onnx`` file: opset, input/output names, metadata keys.

Kept free of onnx/onnxruntime imports so the CLI can describe ``kpr export`` without them.
"""

from __future__ import annotations

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
