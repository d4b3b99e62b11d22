"""Patch embeddings of images and prompts: the same tokens and weight gradients from any input
memory layout (they convert it to channels-last before the convolution)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from kpr.modeling.patch_embed import PatchEmbed
from kpr.modeling.prompt_encoder import PromptEncoder


def _layouts(x: torch.Tensor) -> dict[str, torch.Tensor]:
    wide = torch.cat((x, x), dim=1)  # a channel slice: neither contiguous nor channels-last
    return {
        "contiguous": x.contiguous(),
        "channels_last": x.contiguous(memory_format=torch.channels_last),
        "slice": wide[:, : x.shape[1]],
    }


def _reference(conv: torch.nn.Conv2d, norm: torch.nn.LayerNorm, x: torch.Tensor) -> torch.Tensor:
    tokens = F.conv2d(x.contiguous(), conv.weight, conv.bias, stride=conv.stride)
    return F.layer_norm(tokens.permute(0, 2, 3, 1), norm.normalized_shape, norm.weight, norm.bias)


@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "slice"])
def test_image_patch_embedding_any_layout(layout: str) -> None:
    torch.manual_seed(0)
    embed = PatchEmbed(3, 16, patch_size=4)
    images = torch.randn(2, 3, 32, 16)
    tokens = embed(_layouts(images)[layout])
    assert tokens.shape == (2, 8, 4, 16)
    torch.testing.assert_close(
        tokens, _reference(embed.proj, embed.norm, images), rtol=0, atol=1e-5
    )
    weight_grad = torch.autograd.grad(tokens.square().sum(), embed.proj.weight)[0]
    reference_grad = torch.autograd.grad(
        _reference(embed.proj, embed.norm, images).square().sum(), embed.proj.weight
    )[0]
    torch.testing.assert_close(weight_grad, reference_grad, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "slice"])
def test_prompt_embedding_any_layout(layout: str) -> None:
    torch.manual_seed(0)
    encoder = PromptEncoder(6, 16)
    torch.nn.init.normal_(encoder.proj.weight)
    prompts = torch.rand(2, 6, 32, 16)
    tokens = encoder(_layouts(prompts)[layout], (32, 16))
    assert tokens.shape == (2, 8, 4, 16)
    torch.testing.assert_close(
        tokens, _reference(encoder.proj, encoder.norm, prompts), rtol=0, atol=1e-5
    )


def test_patch_embedding_pads_before_the_layout_change() -> None:
    torch.manual_seed(0)
    embed = PatchEmbed(3, 8, patch_size=4)
    images = torch.randn(1, 3, 30, 14).contiguous(memory_format=torch.channels_last)
    tokens = embed(images)
    assert tokens.shape == (1, 8, 4, 8)
    padded = F.pad(images, (0, 2, 0, 2))
    torch.testing.assert_close(
        tokens, _reference(embed.proj, embed.norm, padded), rtol=0, atol=1e-5
    )
