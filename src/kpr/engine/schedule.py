"""Official learning-rate schedule: linear warm-up from min_lr, then cosine to min_lr.

Officially the rate changes once per epoch; evaluated at fractional epochs (``epoch + i / steps``)
the same curve changes at every step, which keeps short, high-rate recipes from jumping to the peak
rate between two steps.
"""

from __future__ import annotations

import math

import torch


def warmup_cosine_lr(
    epoch: float, max_lr: float, min_lr: float, warmup_epochs: int, total_epochs: int
) -> float:
    """Learning rate of 0-based ``epoch`` (fractional for per-step updates).

    e < warmup: min_lr + (max_lr − min_lr)·e/warmup (so epoch 0 runs at min_lr, as officially);
    afterwards: min_lr + (max_lr − min_lr)·(1 + cos(π·(e − warmup)/(total − warmup)))/2.
    """
    if epoch < warmup_epochs:
        return min_lr + (max_lr - min_lr) * epoch / warmup_epochs
    span = max(total_epochs - warmup_epochs, 1)
    progress = min(epoch - warmup_epochs, span) / span
    return min_lr + (max_lr - min_lr) * (1.0 + math.cos(math.pi * progress)) / 2.0


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Give every parameter group the same rate.

    The official scheduler overwrites group multipliers too.
    """
    for group in optimizer.param_groups:
        group["lr"] = lr
