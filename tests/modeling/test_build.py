import numpy as np
import pytest
import torch

from kpr.checkpoint import create_model
from kpr.errors import ConfigError, KPRError, PromptError
from kpr.modeling.build import list_models, model_config
from kpr.predictor import KPRPredictor


def _count(model) -> int:
    return sum(p.numel() for p in model.parameters())


def test_real_configs_have_the_official_parameter_counts():
    # Official counts (notes §1.11) minus the tensors kpr does not keep: the unused `parts_embed`
    # and, for timm, the two unused final norms.
    solider = create_model(
        "kpr_solider_swin_base_384x128", num_classes=751, backbone={"semantic_weight": None}
    )
    assert _count(solider) == 95_855_422 - 8 * 128
    swinv2 = create_model("kpr_swinv2_base_256x128", num_classes=1000)
    assert _count(swinv2) == 100_750_977 - 10 * 128 - 2 * 1920 - 2 * 1024


@pytest.mark.parametrize("name", ["kpr_solider_swin_base_384x128", "kpr_swinv2_base_256x128"])
def test_real_configs_run_one_forward_at_full_size(name):
    model = create_model(name).eval()
    h, w = model.config.image_size
    k = model.config.num_parts
    with torch.inference_mode():
        out = model(torch.randn(1, 3, h, w))
    assert out.embeddings.shape == (1, 1 + k, 512)
    assert out.part_masks.shape == (1, k + 1, h // 4, w // 4)
    assert out.visibility.dtype == torch.bool


def test_tiny_model_trains_one_step():
    model = create_model("kpr_tiny_128x64", num_classes=4, num_cameras=2).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    out = model(torch.randn(4, 3, 128, 64), cameras=torch.tensor([0, 1, 0, 1]))
    loss = torch.nn.functional.cross_entropy(out.id_logits.foreground, torch.tensor([0, 1, 2, 3]))
    loss = loss + out.pixel_logits.logsumexp(1).mean()
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    assert model.prompt_encoder.proj.weight.grad is not None


def test_registry_and_config_errors():
    assert {"kpr_tiny_128x64", "kpr_swinv2_base_256x128"} <= set(list_models())
    with pytest.raises(ConfigError, match="not registered"):
        model_config("nope")
    with pytest.raises(ConfigError, match="unknown key"):
        model_config("kpr_tiny_128x64", colour="red")
    with pytest.raises(ConfigError, match="image_size"):
        model_config("kpr_tiny_128x64", image_size=("a", 64))
    with pytest.raises(ConfigError, match="backbone.name"):
        create_model("kpr_swinv2_base_256x128", backbone={"name": "resnet50"})


def test_wrong_inputs_are_rejected_with_shapes():
    model = create_model("kpr_tiny_128x64").eval()
    with pytest.raises(KPRError, match=r"\[N, 3, 128, 64\]"):
        model(torch.randn(1, 3, 64, 64))
    with pytest.raises(PromptError, match="cck8"):
        model(torch.randn(1, 3, 128, 64), torch.zeros(1, 8, 128, 64))
    model_cams = create_model("kpr_tiny_128x64", num_cameras=2).eval()
    with pytest.raises(KPRError, match="cameras"):
        model_cams(torch.randn(1, 3, 128, 64), cameras=torch.tensor([5]))


@pytest.mark.parametrize("backbone", ["solider", "swinv2"])
def test_a_model_used_for_inference_first_still_trains(backbone):
    # The predictor embeds under inference mode; what the model keeps from that call (the window
    # layouts, the attention masks) must not be inference tensors a later training step needs.
    if backbone == "swinv2":
        tiny = {"name": "swinv2_base_window8_256", "embed_dim": 16, "depths": [2, 2, 2, 2],
                "num_heads": [1, 2, 2, 4]}  # fmt: skip
        model = create_model(
            "kpr_swinv2_base_256x128", backbone=tiny, image_size=(128, 64), num_classes=4
        )
    else:
        model = create_model("kpr_tiny_128x64", num_classes=4)
    images = torch.randn(4, 3, 128, 64)
    crops = np.random.default_rng(0).integers(0, 256, (2, 128, 64, 3), dtype=np.uint8)
    KPRPredictor(model, device="cpu").embed(list(crops))
    model.train()
    out = model(images)
    loss = torch.nn.functional.cross_entropy(out.id_logits.foreground, torch.tensor([0, 1, 2, 3]))
    loss.backward()
    grads = [p.grad for p in model.backbone.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
