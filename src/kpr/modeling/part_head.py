"""Part-based head: pixel-to-part classifier, weighted pooling, embeddings, visibility, BNNecks."""

from __future__ import annotations

import torch
from torch import nn

from kpr.modeling.outputs import Branches


class PixelToPartClassifier(nn.Module):
    """BatchNorm2d then a 1×1 conv to K+1 logits (background + K parts) per feature pixel."""

    def __init__(self, dim: int, num_parts: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(dim)
        self.classifier = nn.Conv2d(dim, num_parts + 1, kernel_size=1)
        nn.init.normal_(self.classifier.weight, std=0.001)
        nn.init.zeros_(self.classifier.bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """[N, C, Hf, Wf] → [N, K+1, Hf, Wf] logits."""
        return self.classifier(self.bn(features))


class EmbeddingReduction(nn.Sequential):
    """Linear → BatchNorm1d → ReLU, applied after pooling (shared by all parts of a branch)."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__(nn.Linear(in_dim, out_dim), nn.BatchNorm1d(out_dim), nn.ReLU())
        nn.init.normal_(self[0].weight, std=0.01)
        nn.init.zeros_(self[0].bias)


class BNNeck(nn.Module):
    """BoT's BNNeck: BatchNorm1d with a frozen zero bias, then an optional bias-free classifier."""

    def __init__(self, dim: int, num_classes: int):
        super().__init__()
        self.bn = nn.BatchNorm1d(dim)
        self.bn.bias.requires_grad_(False)
        self.classifier = nn.Linear(dim, num_classes, bias=False) if num_classes > 0 else None
        if self.classifier is not None:
            nn.init.normal_(self.classifier.weight, std=0.001)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """[N, D] → (BN features [N, D], logits [N, C] or None)."""
        feats = self.bn(x)
        return feats, (self.classifier(feats) if self.classifier is not None else None)


def spatial_sum(masks: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """Σ_hw m·F: masks [N, M, Hf, Wf], features [N, C, Hf, Wf] → [N, M, C].

    One batched product with the features as [N, Hf·Wf, C], which is how the fused (channels-last)
    features lie in memory: their gradient then comes back channels-last too, and the fusion's
    ReLU and BatchNorm backward run on matching layouts (×7 faster than on mixed ones).
    """
    return torch.bmm(masks.flatten(2), features.flatten(2).transpose(1, 2))


def mask_pools(
    features: torch.Tensor, averaged: torch.Tensor, weighted: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every pooled branch in one product (one gradient of the feature map instead of one per
    branch, ×2.7 faster in training).

    Parameters
    ----------
    features:
        [N, C, Hf, Wf].
    averaged:
        [N, A, Hf, Wf] masks pooled by the spatial mean of m·F, not normalised by the mask's mass
        (the official foreground and background branches; all ones = global average pooling).
    weighted:
        [N, K, Hf, Wf] masks pooled by Σ(m·F) / max(Σm, 1e-6) (the parts).

    Returns
    -------
    tuple of torch.Tensor
        [N, A, C], [N, K, C].
    """
    a, (h, w) = averaged.shape[1], features.shape[-2:]
    sums = spatial_sum(torch.cat((averaged, weighted), dim=1), features)
    mass = weighted.sum(dim=(2, 3)).clamp_min(1e-6).unsqueeze(-1)
    return sums[:, :a] / (h * w), sums[:, a:] / mass


def global_average(features: torch.Tensor) -> torch.Tensor:
    """Spatial mean [N, C, Hf, Wf] → [N, C], through :func:`spatial_sum` for its gradient's layout
    (``mean``'s gradient, a broadcast, turned the accumulated gradient of the fused map row-major).
    """
    n, _, h, w = features.shape
    return spatial_sum(features.new_ones(n, 1, h, w), features)[:, 0] / (h * w)


def part_visibility(part_masks: torch.Tensor, binary: bool) -> torch.Tensor:
    """Per-class visibility from [N, K+1, Hf, Wf] probabilities → [N, K+1].

    Binary: class c is visible iff it is the argmax of at least one pixel. Continuous: the maximum
    probability of class c over the pixels.
    """
    if binary:
        winners = part_masks.argmax(dim=1).flatten(1)
        present = torch.zeros(part_masks.shape[:2], dtype=torch.bool, device=part_masks.device)
        return present.scatter_(1, winners, True)
    return part_masks.flatten(2).amax(dim=2)


class PartHead(nn.Module):
    """From fused features [N, C, Hf, Wf] to part embeddings, visibility and identity logits.

    Foreground = pixel-wise max of the K part probability maps; background = channel 0; global =
    plain average pooling. Parts use the mask-normalised weighted average, foreground and
    background the spatial mean of mask·features. Each branch has its own after-pooling reduction
    (the parts share one) and BNNeck (one per part).
    """

    def __init__(
        self,
        dim: int,
        num_parts: int,
        embedding_dim: int,
        num_classes: int,
        binary_visibility: bool = True,
    ):
        super().__init__()
        self.num_parts = num_parts
        self.binary_visibility = binary_visibility
        self.pixel_classifier = PixelToPartClassifier(dim, num_parts)
        self.reduce_global = EmbeddingReduction(dim, embedding_dim)
        self.reduce_foreground = EmbeddingReduction(dim, embedding_dim)
        self.reduce_background = EmbeddingReduction(dim, embedding_dim)
        self.reduce_parts = EmbeddingReduction(dim, embedding_dim)
        self.neck_global = BNNeck(embedding_dim, num_classes)
        self.neck_foreground = BNNeck(embedding_dim, num_classes)
        self.neck_background = BNNeck(embedding_dim, num_classes)
        self.neck_concat = BNNeck(embedding_dim * num_parts, num_classes)
        self.neck_parts = nn.ModuleList(
            BNNeck(embedding_dim, num_classes) for _ in range(num_parts)
        )

    def _reduce_parts(self, pooled: torch.Tensor) -> torch.Tensor:
        n, k, c = pooled.shape
        return self.reduce_parts(pooled.reshape(n * k, c)).reshape(n, k, -1)

    def forward(self, features: torch.Tensor, full: bool) -> dict[str, object]:
        """Run the head.

        With ``full=False`` only what retrieval uses is computed (foreground BNNeck embedding and
        part embeddings); the global/background branches and every classifier are skipped.
        Returns a dict of the fields of :class:`~kpr.modeling.outputs.KPROutput`.
        """
        logits = self.pixel_classifier(features)
        probs = logits.softmax(dim=1)
        parts_masks = probs[:, 1:]
        foreground_mask = parts_masks.amax(dim=1, keepdim=True)
        present = part_visibility(probs, self.binary_visibility)
        # Foreground visibility is the max over all K+1 classes (background included),
        # as officially.
        visibility = torch.cat([present.amax(dim=1, keepdim=True), present[:, 1:]], dim=1)

        n, _, h, w = features.shape
        # Averaged masks: [foreground], or [global (ones), background, foreground] for every branch.
        averaged = (
            torch.cat((features.new_ones(n, 1, h, w), probs[:, :1], foreground_mask), dim=1)
            if full
            else foreground_mask
        )
        means, weighted = mask_pools(features, averaged, parts_masks)
        parts = self._reduce_parts(weighted)
        foreground = self.reduce_foreground(means[:, -1])
        if not full:
            bn_foreground = self.neck_foreground.bn(foreground)
            return {
                "embeddings": torch.cat([bn_foreground.unsqueeze(1), parts], dim=1),
                "visibility": visibility,
                "part_masks": probs,
                "pixel_logits": logits,
            }

        emb = Branches(
            global_=self.reduce_global(means[:, 0]),
            background=self.reduce_background(means[:, 1]),
            foreground=foreground,
            parts=parts,
            concat=parts.flatten(1),
        )
        necked = {
            "global_": self.neck_global(emb.global_),
            "background": self.neck_background(emb.background),
            "foreground": self.neck_foreground(emb.foreground),
            "concat": self.neck_concat(emb.concat),
        }
        part_necks = [neck(emb.parts[:, k]) for k, neck in enumerate(self.neck_parts)]
        bn = Branches(
            **{k: v[0] for k, v in necked.items()}, parts=torch.stack([p[0] for p in part_necks], 1)
        )
        has_logits = self.neck_global.classifier is not None
        id_logits = (
            Branches(
                **{k: v[1] for k, v in necked.items()},
                parts=torch.stack([p[1] for p in part_necks], 1),
            )
            if has_logits
            else None
        )
        return {
            "embeddings": torch.cat([bn.foreground.unsqueeze(1), emb.parts], dim=1),
            "visibility": visibility,
            "part_masks": probs,
            "pixel_logits": logits,
            "features": features,
            "branch_embeddings": emb,
            "bn_embeddings": bn,
            "id_logits": id_logits,
        }
