"""Training losses: GiLt (identity + part-averaged triplet) and the part-prediction loss; the
global-embedding baseline's identity + triplet loss."""

from kpr.losses.gilt import GiLtLoss, LossWeights
from kpr.losses.global_loss import GlobalLoss, build_loss
from kpr.losses.part_prediction import part_prediction_loss
from kpr.losses.triplet import part_averaged_distances, part_averaged_triplet_loss

__all__ = [
    "GiLtLoss",
    "GlobalLoss",
    "LossWeights",
    "build_loss",
    "part_averaged_distances",
    "part_averaged_triplet_loss",
    "part_prediction_loss",
]
