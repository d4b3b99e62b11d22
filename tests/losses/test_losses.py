import math

import pytest
import torch

from kpr.checkpoint import create_model
from kpr.losses import (
    GiLtLoss,
    LossWeights,
    part_averaged_distances,
    part_averaged_triplet_loss,
    part_prediction_loss,
)


def test_triplet_by_hand():
    # 1-D points 0, 1 (id 0) and 3, 6 (id 1). Only anchor 3 violates: d_ap 3, d_an 2 → 1.3;
    # mean over 4 anchors.
    parts = torch.tensor([[[0.0]], [[1.0]], [[3.0]], [[6.0]]])
    pids = torch.tensor([0, 0, 1, 1])
    assert part_averaged_triplet_loss(parts, pids, margin=0.3).item() == pytest.approx(1.3 / 4)


def test_distances_are_averaged_over_parts():
    parts = torch.tensor(
        [[[0.0, 0.0], [0.0, 0.0]], [[3.0, 4.0], [1.0, 0.0]]]
    )  # part distances 5 and 1
    dist = part_averaged_distances(parts)
    assert torch.allclose(dist, torch.tensor([[0.0, 3.0], [3.0, 0.0]]))


def test_triplet_gradient_is_finite_with_duplicates_and_skips_anchors_without_pairs():
    parts = torch.zeros(3, 2, 4, requires_grad=True)
    loss = part_averaged_triplet_loss(parts, torch.tensor([0, 0, 1]))
    loss.backward()
    assert torch.isfinite(parts.grad).all()
    assert loss.item() == pytest.approx(0.3)  # mean over the 2 valid anchors; id 1 has no positive
    assert part_averaged_triplet_loss(torch.randn(2, 2, 3), torch.tensor([0, 1])).item() == 0.0


def test_part_prediction_loss_by_hand():
    logits = torch.tensor([0.0, math.log(3.0)]).reshape(1, 2, 1, 1)  # p = [0.25, 0.75]
    target = torch.tensor([0.2, 0.8]).reshape(1, 2, 1, 1)  # label 1
    expected = -(0.05 * math.log(0.25) + 0.95 * math.log(0.75))
    assert part_prediction_loss(logits, target, 0.1).item() == pytest.approx(expected, rel=1e-6)
    uniform = torch.zeros(2, 6, 3, 3)
    assert part_prediction_loss(uniform, torch.rand(2, 6, 3, 3)).item() == pytest.approx(
        math.log(6), rel=1e-6
    )


def test_gilt_total_is_the_weighted_sum_of_components():
    torch.manual_seed(0)
    model = create_model("kpr_tiny_128x64", num_classes=3).train()
    out = model(torch.randn(4, 3, 128, 64))
    masks = torch.rand(4, 9, 32, 16)
    weights = LossWeights(id_global=0.5, part_prediction=0.3)
    result = GiLtLoss(weights)(out, torch.tensor([0, 0, 1, 2]), masks)
    c = result.components
    expected = (
        0.5 * c["id_global"]
        + c["id_foreground"]
        + c["id_concat"]
        + c["triplet_parts"]
        + 0.3 * c["part_prediction"]
    )
    assert result.total.item() == pytest.approx(expected, rel=1e-5)
    result.total.backward()
    assert model.head.pixel_classifier.classifier.weight.grad.abs().sum() > 0
    without_masks = GiLtLoss()(model(torch.randn(4, 3, 128, 64)), torch.tensor([0, 0, 1, 2]), None)
    assert "part_prediction" not in without_masks.components
