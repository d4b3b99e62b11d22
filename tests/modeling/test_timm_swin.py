"""kpr's SDPA form of timm SwinV2's window attention is timm's function."""

import pytest
import torch

from kpr.compat.model import official_window_blocks
from kpr.modeling.backbones.timm_swin import TimmSwin, is_v2_attention
from kpr.modeling.config import BackboneConfig


def _tiny_swinv2() -> TimmSwin:
    config = BackboneConfig(
        name="swinv2_base_window8_256", embed_dim=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 4)
    )
    torch.manual_seed(0)
    backbone = TimmSwin(config, (128, 64))
    with torch.no_grad():  # non-trivial biases, logit scales and cpb weights
        for name, p in backbone.named_parameters():
            if "bias" in name or "logit_scale" in name or "cpb" in name:
                p.normal_(0, 0.5)
    return backbone


@pytest.mark.parametrize("train", [False, True])
def test_sdpa_attention_equals_timms_explicit_attention(train):
    backbone = _tiny_swinv2().train(train)
    assert sum(is_v2_attention(m) for m in backbone.modules()) == 8
    assert all("forward" in vars(m) for m in backbone.modules() if is_v2_attention(m))
    images = torch.randn(2, 3, 128, 64, requires_grad=True)
    torch.manual_seed(1)  # drop path draws the same in both runs
    ours = backbone.forward_stages(backbone.embed(images))
    torch.manual_seed(1)
    with official_window_blocks(backbone):
        assert not any("forward" in vars(m) for m in backbone.modules() if is_v2_attention(m))
        theirs = backbone.forward_stages(backbone.embed(images))
    assert all("forward" in vars(m) for m in backbone.modules() if is_v2_attention(m))
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    (grad_ours,) = torch.autograd.grad(sum(f.square().mean() for f in ours), images)
    (grad_theirs,) = torch.autograd.grad(sum(f.square().mean() for f in theirs), images)
    torch.testing.assert_close(grad_ours, grad_theirs, atol=1e-5, rtol=1e-4)
