"""Multi-stage fusion (MSF): the stage outputs → one feature map at stage-0 resolution."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MultiStageFusion(nn.Module):
    """Upsample the given stages to the first one's size (or a given size), concatenate, 1×1 conv,
    BatchNorm, ReLU.

    A 1×1 convolution commutes with bilinear upsampling, so each stage's slice of the 1×1 kernel
    is applied at that stage's own resolution and the results are summed after upsampling: the same
    function as conv(concat(upsampled stages)), at a fraction of the cost (the concatenated tensor
    of sum(stage_dims) channels at full resolution is never built).
    """

    def __init__(self, stage_dims: tuple[int, ...], out_dim: int):
        super().__init__()
        self.stage_dims = tuple(stage_dims)
        self.proj = nn.Conv2d(sum(stage_dims), out_dim, kernel_size=1)
        self.bn = nn.BatchNorm2d(out_dim)
        nn.init.kaiming_normal_(self.proj.weight, mode="fan_out", nonlinearity="relu")
        nn.init.zeros_(self.proj.bias)

    def forward(
        self, features: list[torch.Tensor], size: tuple[int, int] | None = None
    ) -> torch.Tensor:
        """len(stage_dims) × [N, C_i, H_i, W_i] → [N, out_dim, *size].

        ``size`` (H, W) of the output; None = the first feature's size.
        """
        size = tuple(features[0].shape[-2:]) if size is None else tuple(size)
        weights = torch.split(self.proj.weight, self.stage_dims, dim=1)
        out = F.conv2d(features[0], weights[0], self.proj.bias)
        if tuple(out.shape[-2:]) != size:
            out = F.interpolate(out, size=size, mode="bilinear", align_corners=True)
        # In place: each sum would otherwise be a fresh [N, out_dim, *size] tensor (the largest
        # of the model), and neither conv2d nor interpolate needs its output for the backward.
        for feature, weight in zip(features[1:], weights[1:]):
            projected = F.conv2d(feature, weight)
            out.add_(F.interpolate(projected, size=size, mode="bilinear", align_corners=True))
        return F.relu_(self.bn(out))
