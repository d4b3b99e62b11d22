"""kpr: keypoint-promptable person re-identification."""

__version__ = "0.1.0"
