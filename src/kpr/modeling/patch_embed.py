"""Non-overlapping patch embedding of images and prompts, shared by the backbones and the prompt
tokenizer."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["PatchEmbed"]


class PatchEmbed(nn.Module):
    """Non-overlapping patch embedding: Conv2d(k = s = patch) + LayerNorm, output channels-last.

    Inputs whose size is not a multiple of ``patch_size`` are zero-padded on the bottom/right.
    """

    def __init__(self, in_channels: int, dim: int, patch_size: int = 4):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_channels, dim, patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> Tensor:
        """[N, Cin, H, W] → [N, ⌈H/p⌉, ⌈W/p⌉, dim]."""
        pad_h, pad_w = -x.shape[-2] % self.patch_size, -x.shape[-1] % self.patch_size
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        # A channels-last input makes the conv's output, permuted, the contiguous [N, H, W, C]
        # the LayerNorm reads (no copy), and its weight gradient faster (docs/performance.md).
        x = x.contiguous(memory_format=torch.channels_last)
        return self.norm(self.proj(x).permute(0, 2, 3, 1))
