"""Errors of the pose front end; each message names the image (or the backend) at fault."""

from __future__ import annotations

from kpr.errors import KPRError


class PoseError(KPRError):
    """A pose estimator or person detector cannot run on an input, or returned malformed output."""


class MissingExtraError(PoseError):
    """An optional dependency of a backend is not installed; the message says how to install it."""


class CropTooSmallError(PoseError):
    """An image is smaller than the backend's ``min_side``."""


class BackendOutputError(PoseError):
    """A backend returned something other than the documented types and shapes."""
