"""Exceptions raised on bad input. Each message names the file and the field at fault."""

from __future__ import annotations


class KPRError(ValueError):
    """Base class of every error kpr raises for bad user input."""


class KeypointFormatError(KPRError):
    """A keypoint file or array is malformed (wrong shape, NaN, unknown layout)."""


class MaskFormatError(KPRError):
    """A mask file or array is malformed (not single-channel, unknown label values, no target)."""


class PromptError(KPRError):
    """A prompt does not fit the model (wrong channel count or size)."""


class ImageReadError(KPRError):
    """An image is missing, unreadable or corrupt."""


class CheckpointError(KPRError):
    """A checkpoint is unsafe, corrupt, or does not fit the model."""


class ConfigError(KPRError):
    """A configuration has an unknown key, a wrong type or an inconsistent value."""


class DatasetError(KPRError):
    """A dataset tree is missing or incomplete, or one of its files does not fit the layout."""


class BadSampleWarning(UserWarning):
    """Bad samples were skipped while building a dataset (``on_bad_sample="skip"``)."""
