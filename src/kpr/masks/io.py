"""Mask files → :class:`~kpr.masks.crop.CropMasks`: one single-channel PNG per crop.

* person mask: 8-bit, 0 = background, 1 = target, 2 = other people (what ``kpr synth`` writes in
  ``masks/``);
* instance mask: 8- or 16-bit instance ids, plus the target's id;
* part labels: 8-bit classes of a :class:`~kpr.masks.labels.PartLabelTable` (SCHP's LIP or ATR
  output, grey or palette PNG).

Palette PNGs are read as their indices (how parsers save coloured label maps), never as colours.
"""

from __future__ import annotations

import os

import numpy as np
from numpy.typing import NDArray
from PIL import Image, UnidentifiedImageError

from kpr.errors import MaskFormatError
from kpr.masks.crop import CropMasks, instance_mask, part_labels, person_mask
from kpr.masks.labels import PartLabelTable

_SINGLE_CHANNEL_MODES = ("L", "P", "I", "I;16", "1")

PathLike = str | os.PathLike[str]


def read_label_png(path: PathLike) -> NDArray[np.integer]:
    """The label values [H, W] of a single-channel PNG (grey, palette indices or 16-bit).

    Raises
    ------
    MaskFormatError
        If the file is missing, not an image, or has colour channels.
    """
    try:
        with Image.open(path) as img:
            mode = img.mode
            labels = np.asarray(img) if mode in _SINGLE_CHANNEL_MODES else None
    except (OSError, UnidentifiedImageError) as exc:
        raise MaskFormatError(f"{path}: cannot read mask file: {exc}") from None
    if labels is None:
        raise MaskFormatError(
            f"{path}: mask has image mode {mode!r}; expected a single-channel label PNG "
            "(8-bit grey, palette, or 16-bit for instance ids)"
        )
    return labels.astype(np.uint8) if labels.dtype == np.bool_ else labels


def read_person_mask(path: PathLike) -> CropMasks:
    """Read a person mask (0 background, 1 target, 2 other people); other values raise
    :class:`MaskFormatError` naming the file and the values."""
    return person_mask(read_label_png(path), str(path))


def read_instance_mask(path: PathLike, target_id: int, background_id: int = 0) -> CropMasks:
    """Read an instance-id mask; ``target_id`` is the target, every other id other people."""
    return instance_mask(read_label_png(path), target_id, str(path), background_id)


def read_part_labels(
    path: PathLike, table: PartLabelTable | str, person: CropMasks | None = None
) -> CropMasks:
    """Read a part-label map of ``table`` (``"lip"``, ``"atr"``, ``"kpr"``); ``person`` (e.g. from
    :func:`read_person_mask`) tells the target from the other people, see
    :func:`kpr.masks.crop.part_labels`."""
    return part_labels(read_label_png(path), table, str(path), person)
