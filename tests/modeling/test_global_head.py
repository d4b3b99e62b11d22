"""The global-embedding head (the no-PBH ablation, Exp. 1 and 7): one embedding, no parts."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from kpr.checkpoint import create_model, load_model, save_kpr_checkpoint
from kpr.errors import ConfigError, KPRError
from kpr.losses import GiLtLoss, GlobalLoss, LossWeights, build_loss
from kpr.modeling import KPRConfig
from kpr.predictor import KPRPredictor

TINY = {
    "backbone": {"embed_dim": 16, "depths": [1, 1, 1, 1], "num_heads": [1, 1, 2, 2]},
    "embedding_dim": 32,
}


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return create_model("kpr_tiny_128x64", head="global", num_classes=5, **TINY)


def test_global_model_has_one_always_visible_embedding_and_no_part_maps(model):
    images = torch.randn(3, 3, 128, 64)
    out = model.eval()(images)
    assert out.embeddings.shape == (3, 1, 32)
    assert out.visibility.dtype == torch.bool and out.visibility.all()
    assert out.part_masks is None and out.pixel_logits is None
    assert not hasattr(model.head, "pixel_classifier")
    # The retrieval embedding is the BNNeck of the reduced average-pooled features.
    features = model.forward_features(images)
    pooled = model.head.reduce_global(features.mean(dim=(2, 3)))
    torch.testing.assert_close(out.embeddings[:, 0], model.head.neck_global.bn(pooled))


def test_predictor_distance_is_the_global_embedding_distance(model):
    predictor = KPRPredictor(model.eval(), device="cpu")
    crops = [torch.randint(0, 255, (100, 50, 3), dtype=torch.uint8).numpy() for _ in range(3)]
    emb = predictor.embed(crops)
    unit = emb.embeddings[:, 0]
    expected = torch.cdist(unit[:1], unit[1:])
    torch.testing.assert_close(predictor.distance(emb[0], emb[1:]), expected, atol=1e-5, rtol=0)
    with pytest.raises(KPRError, match="no part maps"):
        predictor.embed(crops[0], part_masks=True)


def test_global_loss_is_identity_plus_triplet_with_gilts_weights(model):
    torch.manual_seed(1)
    out = model.train()(torch.randn(4, 3, 128, 64))
    pids = torch.tensor([0, 0, 1, 1])
    weights = LossWeights(id_global=2.0, triplet_parts=0.5, label_smoothing=0.0)
    loss = GlobalLoss(weights)(out, pids)
    ce = F.cross_entropy(out.id_logits.global_, pids)
    d = torch.cdist(out.bn_embeddings.global_, out.bn_embeddings.global_)
    # Batch-hard by hand: each anchor's one positive, and its closest negative.
    d_ap = torch.stack([d[0, 1], d[1, 0], d[2, 3], d[3, 2]])
    d_an = torch.stack([d[0, 2:].min(), d[1, 2:].min(), d[2, :2].min(), d[3, :2].min()])
    triplet = torch.relu(d_ap - d_an + weights.triplet_margin).mean()
    torch.testing.assert_close(loss.total, 2.0 * ce + 0.5 * triplet, atol=1e-5, rtol=1e-5)
    assert set(loss.components) == {"id_global", "triplet_global"}
    assert isinstance(build_loss("global", weights), GlobalLoss)
    assert isinstance(build_loss("parts", weights), GiLtLoss)


def test_head_is_saved_and_old_configs_load_as_part_models(model, tmp_path):
    save_kpr_checkpoint(tmp_path / "g", model.config, model.state_dict())
    reloaded = load_model(tmp_path / "g")
    assert reloaded.config.head == "global"
    for key, value in model.state_dict().items():
        torch.testing.assert_close(reloaded.state_dict()[key], value)
    # A checkpoint written before the field existed is a part-based model.
    parts = create_model("kpr_tiny_128x64", **TINY)
    save_kpr_checkpoint(tmp_path / "p", parts.config, parts.state_dict())
    config_file = tmp_path / "p" / "config.json"
    document = json.loads(config_file.read_text())
    del document["model"]["head"]
    config_file.write_text(json.dumps(document))
    assert load_model(tmp_path / "p").config.head == "parts"


def test_unknown_head_is_refused():
    with pytest.raises(ConfigError, match="head: expected one of"):
        KPRConfig(head="pyramid")  # type: ignore[arg-type]
