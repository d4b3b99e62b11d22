"""Batch-hard triplet loss on part-averaged distances."""

from __future__ import annotations

import torch


def part_averaged_distances(parts: torch.Tensor) -> torch.Tensor:
    """Mean over parts of the pairwise Euclidean distances.

    parts [N, K, D] → [N, N]. The square root is taken only where the squared distance is > 0, so
    the gradient stays finite on identical pairs (and on the diagonal).
    """
    per_part = parts.transpose(0, 1)  # [K, N, D]
    squared = torch.cdist(
        per_part, per_part, p=2.0, compute_mode="donot_use_mm_for_euclid_dist"
    ).square()
    positive = squared > 0
    dist = torch.zeros_like(squared)
    dist[positive] = squared[positive].sqrt()
    return dist.mean(dim=0)


def part_averaged_triplet_loss(
    parts: torch.Tensor, pids: torch.Tensor, margin: float = 0.3
) -> torch.Tensor:
    """Batch-hard triplet loss (hard margin) on part-averaged distances.

    For each anchor: hardest positive = max distance to another sample of its id; hardest negative =
    min distance to a sample of another id; loss = mean over anchors having both of
    relu(d_ap − d_an + margin). parts [N, K, D], pids [N].
    """
    dist = part_averaged_distances(parts)
    same = pids[:, None] == pids[None, :]
    eye = torch.eye(len(pids), dtype=torch.bool, device=pids.device)
    positives = same & ~eye
    negatives = ~same
    valid = positives.any(dim=1) & negatives.any(dim=1)
    if not valid.any():
        return parts.sum() * 0.0
    hardest_pos = dist.masked_fill(~positives, float("-inf")).amax(dim=1)
    hardest_neg = dist.masked_fill(~negatives, float("inf")).amin(dim=1)
    return torch.relu(hardest_pos - hardest_neg + margin)[valid].mean()
