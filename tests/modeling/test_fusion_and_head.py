import pytest
import torch
import torch.nn.functional as F

from kpr.checkpoint import create_model
from kpr.errors import ConfigError
from kpr.losses import LossWeights, build_loss
from kpr.modeling.build import model_config
from kpr.modeling.fusion import MultiStageFusion
from kpr.modeling.part_head import (
    PartHead,
    global_average,
    mask_pools,
    part_visibility,
)


def test_per_stage_fusion_equals_conv_of_concatenated_upsampled_stages():
    torch.manual_seed(0)
    dims = (8, 16, 32, 64)
    fusion = MultiStageFusion(dims, 24).eval()
    with torch.no_grad():
        fusion.bn.running_mean.normal_()
        fusion.bn.running_var.uniform_(0.5, 2.0)
    feats = [torch.randn(2, c, 32 // 2**i, 16 // 2**i) for i, c in enumerate(dims)]
    up = [feats[0]] + [
        F.interpolate(f, size=(32, 16), mode="bilinear", align_corners=True) for f in feats[1:]
    ]
    reference = F.relu(fusion.bn(fusion.proj(torch.cat(up, dim=1))))
    torch.testing.assert_close(fusion(feats), reference, atol=1e-5, rtol=1e-5)


def test_mask_pools_and_global_average_by_hand():
    features = torch.tensor([[[[1.0, 3.0], [5.0, 7.0]]]])  # [1, 1, 2, 2]
    mask = torch.tensor([[[[1.0, 0.0], [0.5, 0.0]]]])  # [1, 1, 2, 2]
    # averaged: spatial mean of mask*features (1 + 2.5) / 4; weighted: (1*1 + 0.5*5) / 1.5
    averaged, weighted = mask_pools(features, torch.cat((mask, torch.ones_like(mask)), 1), mask)
    assert torch.allclose(averaged, torch.tensor([[[3.5 / 4], [4.0]]]))
    assert torch.allclose(weighted, torch.tensor([[[3.5 / 1.5]]]))
    _, empty = mask_pools(features, mask, torch.zeros_like(mask))
    assert torch.equal(empty, torch.zeros(1, 1, 1))
    assert torch.allclose(global_average(features), torch.tensor([[4.0]]))


def test_training_gradient_of_the_fused_map_stays_channels_last():
    # The fused map is channels-last; a row-major gradient makes the fusion's ReLU and BatchNorm
    # backward ×7 slower (docs/performance.md).
    torch.manual_seed(0)
    model = create_model("kpr_tiny_128x64", num_classes=4).train()
    images, prompts = (
        torch.randn(4, 3, 128, 64),
        torch.rand(4, model.config.prompt_channels, 128, 64),
    )
    grads = []

    def keep_gradient(_module, _inputs, out):
        out.register_hook(grads.append)

    model.fusion.register_forward_hook(keep_gradient)
    out = model(images, prompts)
    targets = torch.softmax(torch.randn(out.pixel_logits.shape), dim=1)
    build_loss("parts", LossWeights())(out, torch.tensor([0, 0, 1, 1]), targets).total.backward()
    (grad,) = grads
    assert out.features.is_contiguous(memory_format=torch.channels_last)
    assert grad.is_contiguous(memory_format=torch.channels_last)


def test_binary_visibility_is_argmax_presence():
    probs = torch.zeros(1, 4, 1, 3)
    probs[0, :, 0, 0] = torch.tensor([0.7, 0.1, 0.1, 0.1])  # background wins
    probs[0, :, 0, 1] = torch.tensor([0.2, 0.5, 0.2, 0.1])  # part 1 wins
    probs[0, :, 0, 2] = torch.tensor([0.1, 0.2, 0.3, 0.4])  # part 3 wins
    assert part_visibility(probs, binary=True).tolist() == [[True, True, False, True]]
    continuous = part_visibility(probs, binary=False)
    assert torch.allclose(continuous, torch.tensor([[0.7, 0.5, 0.3, 0.4]]))


def test_fast_path_equals_full_path():
    torch.manual_seed(0)
    head = PartHead(dim=16, num_parts=3, embedding_dim=8, num_classes=5).eval()
    features = torch.randn(2, 16, 8, 4)
    fast, full = head(features, full=False), head(features, full=True)
    assert "id_logits" not in fast and full["id_logits"] is not None
    for key in ("embeddings", "visibility", "part_masks", "pixel_logits"):
        torch.testing.assert_close(fast[key], full[key])
    assert full["embeddings"].shape == (2, 4, 8)
    assert full["id_logits"].parts.shape == (2, 3, 5)
    # Foreground visibility includes the background class: always true in binary mode.
    assert full["visibility"][:, 0].all()


def test_last_stage_only_fusion_keeps_the_stage0_resolution():
    torch.manual_seed(0)
    model = create_model("kpr_tiny_128x64", fusion_stages=(3,)).eval()
    assert model.fusion.stage_dims == (model.backbone.stage_dims[3],)
    with torch.no_grad():
        out = model(torch.randn(2, 3, 128, 64))
    assert out.part_masks.shape == (2, model.config.num_parts + 1, 32, 16)
    assert out.embeddings.shape == (2, model.config.num_parts + 1, model.config.embedding_dim)


def test_invalid_fusion_stages_are_config_errors():
    for stages in ((), (2, 1), (1, 1), (-1,)):
        with pytest.raises(ConfigError, match="fusion_stages"):
            model_config("kpr_tiny_128x64", fusion_stages=stages)
    with pytest.raises(ConfigError, match="4 stages"):
        create_model("kpr_tiny_128x64", fusion_stages=(0, 4))
