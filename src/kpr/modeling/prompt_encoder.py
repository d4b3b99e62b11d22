"""Prompt tokenizer: prompt heatmaps → patch tokens summed with the image tokens before stage 0."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from kpr.modeling.patch_embed import PatchEmbed


class PromptEncoder(PatchEmbed):
    """A patch embedding for prompt heatmaps (conv k=s=patch, then LayerNorm).

    Parameters
    ----------
    in_channels:
        Prompt channels Cp ([background, negatives, groups…] in the official layout).
    embed_dim:
        Width of the backbone's first stage.
    background_channel:
        Whether channel 0 is the background channel (False for the official
        ``no_background_token`` models: the empty prompt is then all zeros).
    zero_init:
        Start with an all-zero projection so an untrained tokenizer leaves the backbone unchanged
        (LayerNorm of a zero vector returns its bias, 0 at init) — SOLIDER recipes do this.
    """

    def __init__(
        self,
        in_channels: int,
        embed_dim: int,
        patch_size: int = 4,
        zero_init: bool = False,
        background_channel: bool = True,
    ):
        super().__init__(in_channels, embed_dim, patch_size)
        self.in_channels = in_channels
        self.background_channel = background_channel
        if zero_init:
            nn.init.zeros_(self.proj.weight)
            nn.init.zeros_(self.proj.bias)

    def empty_prompt(self, n: int, hw: tuple[int, int], like: torch.Tensor) -> torch.Tensor:
        """The "no prompt" input: [N, Cp, H, W] zeros.

        The background channel (0), if any, is set to 1.
        """
        prompt = like.new_zeros((n, self.in_channels, *hw))
        if self.background_channel:
            prompt[:, 0] = 1.0
        return prompt

    def forward(self, prompts: torch.Tensor, image_hw: tuple[int, int]) -> torch.Tensor:
        """Tokenize prompts.

        Parameters
        ----------
        prompts:
            [N, Cp, Hp, Wp] heatmaps; resized bilinearly (align_corners=True) to the image size
            if they differ, as the official tokenizer does.
        image_hw:
            (H, W) of the images the tokens are added to.

        Returns
        -------
        torch.Tensor
            [N, ⌈H/p⌉, ⌈W/p⌉, D] tokens (channels last, like the image tokens).
        """
        prompts = prompts.to(self.proj.weight.dtype)
        if tuple(prompts.shape[-2:]) != tuple(image_hw):
            prompts = F.interpolate(prompts, size=image_hw, mode="bilinear", align_corners=True)
        return super().forward(prompts)
