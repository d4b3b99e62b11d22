"""Label tables: what the values of a mask file mean, and which prompt group each part feeds.

A *person mask* labels each pixel 0 = background, 1 = target, 2 = other people. A *part-label
map* (a human parser's output, e.g. SCHP) labels each pixel with a class of a
:class:`PartLabelTable`; each class names the body regions it covers (:data:`REGIONS`), and a
region feeds the prompt groups of a grouping that hold its anchor keypoint — the groups a keypoint
prompt would draw that keypoint into (so with ``cck8`` a shoe feeds ``left_leg`` and
``left_feet``, as the ankle does). A class that names no side (pants, gloves) feeds both sides.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from kpr.errors import ConfigError
from kpr.keypoints.coco import COCO17_NAMES
from kpr.keypoints.groupings import BODY_REGIONS, Grouping

BACKGROUND, TARGET, OTHERS = 0, 1, 2
"""The values of a person mask."""
PERSON_LABELS: tuple[str, ...] = ("background", "target", "other_people")

REGION_ANCHORS: Mapping[str, tuple[str, ...]] = {
    "head": ("nose",),
    "torso": ("left_hip", "right_hip"),
    "left_arm": ("left_wrist",),
    "right_arm": ("right_wrist",),
    "left_leg": ("left_knee",),
    "right_leg": ("right_knee",),
    "left_foot": ("left_ankle",),
    "right_foot": ("right_ankle",),
}
"""Per body region, the COCO keypoints whose prompt groups it feeds."""
REGIONS: tuple[str, ...] = tuple(REGION_ANCHORS)

_ARMS = ("left_arm", "right_arm")
_LEGS = ("left_leg", "right_leg")
_FEET = ("left_foot", "right_foot")


@dataclass(frozen=True)
class PartLabelTable:
    """The classes of a part-label map, index = label value, and the regions each one covers.

    Attributes
    ----------
    name : str
        Registry name (``lip``, ``atr``, ``kpr``).
    classes : tuple of str
        Class names; class 0 is the background.
    regions : tuple of tuple of str
        Per class, the :data:`REGIONS` it covers; ``()`` = no body part (background, a bag):
        such pixels feed no part channel.
    """

    name: str
    classes: tuple[str, ...]
    regions: tuple[tuple[str, ...], ...]

    def __post_init__(self) -> None:
        if len(self.classes) != len(self.regions) or not self.classes:
            raise ConfigError(
                f"label table {self.name!r}: {len(self.classes)} classes but "
                f"{len(self.regions)} region lists"
            )
        unknown = sorted({r for rs in self.regions for r in rs} - set(REGIONS))
        if unknown or self.regions[0]:
            raise ConfigError(
                f"label table {self.name!r}: class 0 must be the background and regions must be "
                f"among {list(REGIONS)}, got {unknown or list(self.regions[0])}"
            )

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def _table(name: str, entries: dict[str, tuple[str, ...]]) -> PartLabelTable:
    return PartLabelTable(name, tuple(entries), tuple(entries.values()))


LIP = _table(
    "lip",
    {
        "Background": (),
        "Hat": ("head",),
        "Hair": ("head",),
        "Glove": _ARMS,
        "Sunglasses": ("head",),
        "Upper-clothes": ("torso",),
        "Dress": ("torso", *_LEGS),
        "Coat": ("torso",),
        "Socks": _FEET,
        "Pants": _LEGS,
        "Jumpsuits": ("torso", *_LEGS),
        "Scarf": ("torso",),
        "Skirt": _LEGS,
        "Face": ("head",),
        "Left-arm": ("left_arm",),
        "Right-arm": ("right_arm",),
        "Left-leg": ("left_leg",),
        "Right-leg": ("right_leg",),
        "Left-shoe": ("left_foot",),
        "Right-shoe": ("right_foot",),
    },
)
"""LIP's 20 classes, as SCHP's ``lip`` model emits them."""

ATR = _table(
    "atr",
    {
        "Background": (),
        "Hat": ("head",),
        "Hair": ("head",),
        "Sunglasses": ("head",),
        "Upper-clothes": ("torso",),
        "Skirt": _LEGS,
        "Pants": _LEGS,
        "Dress": ("torso", *_LEGS),
        "Belt": ("torso",),
        "Left-shoe": ("left_foot",),
        "Right-shoe": ("right_foot",),
        "Face": ("head",),
        "Left-leg": ("left_leg",),
        "Right-leg": ("right_leg",),
        "Left-arm": ("left_arm",),
        "Right-arm": ("right_arm",),
        "Bag": (),
        "Scarf": ("torso",),
    },
)
"""ATR's 18 classes, as SCHP's ``atr`` model emits them."""


def _region_of(fine: str) -> tuple[str, ...]:
    if fine == "background":
        return ()
    side, _, rest = fine.partition("_")
    if rest.endswith("foot"):
        return (f"{side}_foot",)
    if rest.endswith(("arm", "leg")):
        return (f"{side}_{rest.rsplit('_', 1)[1]}",)
    return (fine,)


KPR_REGIONS = PartLabelTable("kpr", BODY_REGIONS, tuple(_region_of(name) for name in BODY_REGIONS))
"""kpr's fine body regions (:data:`~kpr.keypoints.groupings.BODY_REGIONS`, 13 classes): the
synthetic dataset's ``parsing/`` labels."""

LABEL_TABLES: Mapping[str, PartLabelTable] = {t.name: t for t in (LIP, ATR, KPR_REGIONS)}


def label_table(name: str | PartLabelTable) -> PartLabelTable:
    """The registered table called ``name`` (a table is returned as is).

    Raises
    ------
    ConfigError
        For an unknown name; the message lists the known ones.
    """
    if isinstance(name, PartLabelTable):
        return name
    try:
        return LABEL_TABLES[name]
    except KeyError:
        raise ConfigError(
            f"unknown part-label table {name!r}; known: {', '.join(LABEL_TABLES)}"
        ) from None


def table_for_classes(classes: tuple[str, ...] | None) -> PartLabelTable | None:
    """The registered table with exactly these class names, or None."""
    return next((t for t in LABEL_TABLES.values() if t.classes == classes), None)


@functools.cache
def class_groups(table: PartLabelTable, grouping: Grouping) -> NDArray[np.bool_]:
    """Which prompt groups each class feeds.

    Returns
    -------
    ndarray, shape [C, Kp], bool, read-only (cached)
        ``[c, g]`` is True when a region of class ``c`` has an anchor keypoint in group ``g``.
    """
    if grouping.source_names != COCO17_NAMES:
        raise ConfigError(f"grouping {grouping.name!r} is not a prompt grouping of COCO keypoints")
    region_groups = {
        region: {
            g
            for g, members in enumerate(grouping.members)
            if any(COCO17_NAMES.index(k) in members for k in anchors)
        }
        for region, anchors in REGION_ANCHORS.items()
    }
    out = np.zeros((table.num_classes, grouping.num_parts), bool)
    for c, regions in enumerate(table.regions):
        for region in regions:
            out[c, sorted(region_groups[region])] = True
    out.setflags(write=False)
    return out
