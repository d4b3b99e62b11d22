"""Training losses: GiLt (identity + part-averaged triplet) and the part-prediction loss."""

from kpr.losses.gilt import GiLtLoss, LossWeights
from kpr.losses.part_prediction import part_prediction_loss
from kpr.losses.triplet import part_averaged_distances, part_averaged_triplet_loss

__all__ = [
    "GiLtLoss",
    "LossWeights",
    "part_averaged_distances",
    "part_averaged_triplet_loss",
    "part_prediction_loss",
]
