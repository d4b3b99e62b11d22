"""What a segmenter says about one crop: :class:`CropMasks`, built from arrays of any of the three
kinds (person mask, instance ids + the target's id, part labels)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import ArrayLike, NDArray

from kpr.errors import MaskFormatError
from kpr.masks.labels import BACKGROUND, OTHERS, TARGET, PartLabelTable, label_table

_PERSON_VALUES = "person mask values (0 background, 1 target, 2 other people)"


def _parts_of(table: PartLabelTable) -> str:
    return f"{table.name!r} part labels ({table.num_classes} classes, see kpr.masks.LABEL_TABLES)"


@dataclass(frozen=True, eq=False)
class CropMasks:
    """The segmentation of one crop.

    Attributes
    ----------
    person : ndarray, shape [H, W], uint8
        0 = background, 1 = target, 2 = other people.
    parts : ndarray, shape [H, W], uint8, or None
        The target's part labels (indices into ``table.classes``, 0 = background), used by
        ``parsing`` prompts; only pixels where ``person`` is the target count.
    table : PartLabelTable or None
        The classes of ``parts`` (required with ``parts``).
    source : str
        Where the masks came from (a file, usually), for messages.
    """

    person: NDArray[np.uint8]
    parts: NDArray[np.uint8] | None = None
    table: PartLabelTable | None = None
    source: str = "mask"

    def __post_init__(self) -> None:
        if self.person.ndim != 2 or self.person.dtype != np.uint8:
            raise MaskFormatError(
                f"{self.source}: person mask must be uint8 [H, W], got {self.person.dtype} "
                f"{list(self.person.shape)}"
            )
        _check_values(self.person, 3, self.source, _PERSON_VALUES)
        if self.parts is None:
            return
        if self.table is None:
            raise MaskFormatError(f"{self.source}: part labels given without their label table")
        if self.parts.shape != self.person.shape or self.parts.dtype != np.uint8:
            raise MaskFormatError(
                f"{self.source}: part labels must be uint8 {list(self.person.shape)} like the "
                f"person mask, got {self.parts.dtype} {list(self.parts.shape)}"
            )
        _check_values(self.parts, self.table.num_classes, self.source, _parts_of(self.table))

    @property
    def hw(self) -> tuple[int, int]:
        return int(self.person.shape[0]), int(self.person.shape[1])

    @property
    def target(self) -> NDArray[np.bool_]:
        """[H, W] bool, the target's pixels."""
        return self.person == TARGET

    @property
    def others(self) -> NDArray[np.bool_]:
        """[H, W] bool, the other people's pixels."""
        return self.person == OTHERS

    def resized(self, hw: tuple[int, int]) -> CropMasks:
        """The masks at (H, W), nearest-neighbour (labels must not blend)."""
        if hw == self.hw:
            return self
        size = (hw[1], hw[0])
        person = cv2.resize(self.person, size, interpolation=cv2.INTER_NEAREST)
        parts = None
        if self.parts is not None:
            parts = cv2.resize(self.parts, size, interpolation=cv2.INTER_NEAREST)
        return CropMasks(person, parts, self.table, self.source)


def _check_values(labels: NDArray[np.integer], count: int, source: str, what: str) -> None:
    values = np.unique(labels)
    unknown = values[values >= count]
    if unknown.size:
        raise MaskFormatError(
            f"{source}: unknown label value(s) {unknown.tolist()} for {what}; "
            f"expected 0..{count - 1}"
        )


def _as_labels(array: ArrayLike, source: str, what: str) -> NDArray[np.integer]:
    arr = np.asarray(array)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim != 2 or not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_):
        raise MaskFormatError(
            f"{source}: {what} must be an integer [H, W] array, got {arr.dtype} {list(arr.shape)}"
        )
    if arr.size and int(arr.min()) < 0:
        raise MaskFormatError(f"{source}: {what} holds negative values ({int(arr.min())})")
    return arr


def _uint8(labels: NDArray[np.integer], count: int, source: str, what: str) -> NDArray[np.uint8]:
    _check_values(labels, count, source, what)
    return labels.astype(np.uint8)


def person_mask(array: ArrayLike, source: str = "mask") -> CropMasks:
    """A person mask [H, W] (0 background, 1 target, 2 other people) → :class:`CropMasks`.

    Raises
    ------
    MaskFormatError
        Naming ``source`` and the values, for anything but 0, 1 and 2.
    """
    labels = _as_labels(array, source, "person mask")
    return CropMasks(_uint8(labels, 3, source, _PERSON_VALUES), source=source)


def instance_mask(
    array: ArrayLike, target_id: int, source: str = "mask", background_id: int = 0
) -> CropMasks:
    """Instance ids [H, W] (one id per person, ``background_id`` elsewhere) and the target's id →
    :class:`CropMasks`; every other id is "other people".

    Raises
    ------
    MaskFormatError
        If ``target_id`` is the background id or does not occur (the ids present are listed).
    """
    ids = _as_labels(array, source, "instance ids")
    if target_id == background_id or not (ids == target_id).any():
        present = sorted(set(np.unique(ids).tolist()) - {background_id})
        raise MaskFormatError(
            f"{source}: target id {target_id} is not a person of this instance mask "
            f"(person ids present: {present}, background {background_id})"
        )
    person = np.full(ids.shape, OTHERS, np.uint8)
    person[ids == background_id] = BACKGROUND
    person[ids == target_id] = TARGET
    return CropMasks(person, source=source)


def part_labels(
    array: ArrayLike,
    table: PartLabelTable | str,
    source: str = "mask",
    person: CropMasks | None = None,
) -> CropMasks:
    """A part-label map [H, W] (a human parser's classes, see :mod:`kpr.masks.labels`) →
    :class:`CropMasks`.

    Without ``person`` every labelled pixel is taken as the target (a parser run on the target's
    crop); with it, the target and other people come from ``person`` and only the parts inside
    the target count.

    Raises
    ------
    MaskFormatError
        Naming ``source`` and the values, for labels outside the table.
    """
    tab = label_table(table)
    parts = _uint8(
        _as_labels(array, source, "part labels"), tab.num_classes, source, _parts_of(tab)
    )
    if person is None:
        people = np.where(parts > 0, TARGET, BACKGROUND).astype(np.uint8)
        return CropMasks(people, parts, tab, source)
    if person.hw != parts.shape:
        raise MaskFormatError(
            f"{source}: part labels are {parts.shape[0]}x{parts.shape[1]} but the person mask "
            f"{person.source} is {person.hw[0]}x{person.hw[1]} (HxW)"
        )
    return CropMasks(person.person, parts, tab, f"{person.source} + {source}")
