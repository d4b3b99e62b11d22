"""Masks degraded the way a real segmenter errs, to measure how much a mask-prompt model relies on
clean masks: the target mask eroded (thin parts lost), dilated onto the background (a halo), or
leaking onto the other people (an occluder merged into the target).

Each crop's degradation radius is drawn from its own random stream, seeded by the degradation's
seed and the crop's name, so a crop is degraded the same way in every run and in any order.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from kpr.errors import ConfigError
from kpr.masks.crop import CropMasks
from kpr.masks.labels import BACKGROUND, OTHERS, TARGET

DegradationKind = Literal["erode", "dilate", "leak"]
DEGRADATION_KINDS: tuple[DegradationKind, ...] = ("erode", "dilate", "leak")


@dataclass(frozen=True)
class MaskDegradation:
    """How to degrade the target mask of every crop.

    Attributes
    ----------
    kind : {"erode", "dilate", "leak"}
        ``erode``: target pixels within the radius of its border become background; ``dilate``:
        background within the radius of the target becomes target; ``leak``: other people's pixels
        within the radius of the target become target.
    strength : (float, float)
        Range of the radius as a fraction of the crop's height, drawn uniformly per crop.
    seed : int
    """

    kind: DegradationKind
    strength: tuple[float, float] = (0.02, 0.05)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in DEGRADATION_KINDS:
            raise ConfigError(
                f"mask degradation: kind must be one of {list(DEGRADATION_KINDS)}, "
                f"got {self.kind!r}"
            )
        lo, hi = self.strength
        if not 0.0 <= lo <= hi <= 1.0:
            raise ConfigError(
                f"mask degradation: strength needs 0 <= min <= max <= 1, got {(lo, hi)}"
            )

    def radius(self, key: str, height: int) -> int:
        """The radius in pixels for the crop called ``key`` of the given height."""
        rng = np.random.default_rng([self.seed, zlib.crc32(key.encode())])
        return int(round(rng.uniform(*self.strength) * height))


def _disc(radius: int) -> NDArray[np.uint8]:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def _grown(masks: CropMasks, radius: int, into: int) -> CropMasks:
    """The target grown by ``radius`` px over the pixels labelled ``into``; a new target pixel
    takes the part label of the nearest original target pixel."""
    target = masks.target
    if radius <= 0 or not target.any():
        return masks
    reach = cv2.dilate(target.astype(np.uint8), _disc(radius)).astype(bool)
    added = reach & (masks.person == into)
    person = masks.person.copy()
    person[added] = TARGET
    parts = masks.parts
    if parts is not None:
        _, (rows, cols) = ndimage.distance_transform_edt(~target, return_indices=True)
        parts = parts.copy()
        parts[added] = masks.parts[rows[added], cols[added]]
    return CropMasks(person, parts, masks.table, masks.source)


def erode_target(masks: CropMasks, radius: int) -> CropMasks:
    """Target pixels closer than ``radius`` px to a non-target pixel become background."""
    if radius <= 0:
        return masks
    kept = cv2.erode(masks.target.astype(np.uint8), _disc(radius)).astype(bool)
    person = masks.person.copy()
    person[masks.target & ~kept] = BACKGROUND
    return CropMasks(person, masks.parts, masks.table, masks.source)


def dilate_target(masks: CropMasks, radius: int) -> CropMasks:
    """Background within ``radius`` px of the target becomes target."""
    return _grown(masks, radius, BACKGROUND)


def leak_target(masks: CropMasks, radius: int) -> CropMasks:
    """Other people's pixels within ``radius`` px of the target become target."""
    return _grown(masks, radius, OTHERS)


_APPLY = {"erode": erode_target, "dilate": dilate_target, "leak": leak_target}


def degrade(masks: CropMasks, degradation: MaskDegradation, key: str) -> CropMasks:
    """``masks`` degraded by ``degradation`` with the radius drawn for the crop ``key``."""
    radius = degradation.radius(key, masks.hw[0])
    return _APPLY[degradation.kind](masks, radius)
