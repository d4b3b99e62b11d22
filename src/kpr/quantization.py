"""The int8 path: dynamic quantization of a KPR model's Linear layers (CPU, needs VNNI to pay).

Weights are quantized once to int8 per tensor; activations are quantized per batch on the fly
(PyTorch's eager dynamic quantization, fbgemm/x86 kernels). Convolutions, attention products,
norms and the head's pooling stay float32.
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import nn

from kpr.modeling.kpr import KPR


def _reads_weight_directly(parent: nn.Module, child_name: str) -> bool:
    # timm's SwinV2 attention calls F.linear(x, self.qkv.weight, bias) to add its q/v biases: a
    # quantized module has no float .weight tensor, so that layer stays float32.
    return type(parent).__name__ == "WindowAttention" and child_name == "qkv"


def quantize_linear_int8(model: KPR) -> KPR:
    """A copy of ``model`` (CPU, eval) whose Linear layers run int8 dynamic quantization."""
    model = copy.deepcopy(model).float().cpu().eval()
    parents = dict(model.named_modules())
    names = set()
    for name, module in model.named_modules():
        if not isinstance(module, nn.Linear):
            continue
        parent_name, _, child = name.rpartition(".")
        if not _reads_weight_directly(parents[parent_name], child):
            names.add(name)
    with warnings.catch_warnings():
        # torch.ao's eager quantization warns that it moves to torchao; it still works here.
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, names, dtype=torch.qint8)
