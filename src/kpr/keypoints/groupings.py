"""Body-part groupings as data: prompts group COCO-17 keypoints, targets group PifPaf fields.

A grouping maps source channels (17 keypoints, or the 36 PifPaf label channels) to body parts; a
part's value is the pixel-wise max over its member channels.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from kpr.errors import ConfigError, KeypointFormatError
from kpr.keypoints.coco import COCO17_NAMES, PIFPAF_CHANNEL_NAMES


@dataclass(frozen=True)
class Grouping:
    """A named partition-like table from source channels to body parts.

    Attributes
    ----------
    name : str
        Registry name, e.g. ``"cck8"`` or ``"five_v"``.
    part_names : tuple of str
        One name per part, in channel order.
    members : tuple of tuple of int
        Source channel indices of each part, in part order. A channel may feed several parts.
    source_names : tuple of str
        Names of the source channels the indices refer to (``COCO17_NAMES`` or
        ``PIFPAF_CHANNEL_NAMES``); fixes the channel count a grouped array must have.
    """

    name: str
    part_names: tuple[str, ...]
    members: tuple[tuple[int, ...], ...]
    source_names: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.part_names) != len(self.members):
            raise ConfigError(
                f"grouping {self.name!r}: {len(self.part_names)} part names "
                f"but {len(self.members)} member lists"
            )
        for part, idx in zip(self.part_names, self.members):
            if not idx or not all(0 <= i < len(self.source_names) for i in idx):
                raise ConfigError(
                    f"grouping {self.name!r}: part {part!r} has members {idx}, "
                    f"expected a non-empty subset of 0..{len(self.source_names) - 1}"
                )

    @property
    def num_parts(self) -> int:
        return len(self.part_names)

    @property
    def num_sources(self) -> int:
        return len(self.source_names)


def _table(name: str, sources: tuple[str, ...], parts: dict[str, tuple[str, ...]]) -> Grouping:
    return Grouping(
        name=name,
        part_names=tuple(parts),
        members=tuple(tuple(sources.index(s) for s in srcs) for srcs in parts.values()),
        source_names=sources,
    )


_FACE = ("nose", "left_eye", "right_eye", "left_ear", "right_ear")
_SHOULDERS_HIPS = ("left_shoulder", "right_shoulder", "left_hip", "right_hip")
_ARMS = ("left_elbow", "right_elbow", "left_wrist", "right_wrist")
_LEGS = ("left_knee", "right_knee", "left_ankle", "right_ankle")

BODY_REGIONS: tuple[str, ...] = (
    "background",
    "head",
    "torso",
    "left_upper_arm",
    "left_lower_arm",
    "right_upper_arm",
    "right_lower_arm",
    "left_upper_leg",
    "left_lower_leg",
    "right_upper_leg",
    "right_lower_leg",
    "left_foot",
    "right_foot",
)
"""Fine body regions of label maps: the synthetic dataset's parsing classes and the regions kpr
draws from keypoints when no parsing labels exist."""

PROMPT_GROUPINGS: Mapping[str, Grouping] = {
    g.name: g
    for g in (
        _table(
            "cck8",
            COCO17_NAMES,
            {
                "head": _FACE,
                "left_arm": ("left_shoulder", "left_elbow", "left_wrist"),
                "right_arm": ("right_shoulder", "right_elbow", "right_wrist"),
                "torso": _SHOULDERS_HIPS,
                "left_leg": ("left_knee", "left_ankle"),
                "right_leg": ("right_knee", "right_ankle"),
                "left_feet": ("left_ankle",),
                "right_feet": ("right_ankle",),
            },
        ),
        _table(
            "cck6",
            COCO17_NAMES,
            {
                "head": _FACE,
                "left_arm": ("left_elbow", "left_wrist"),
                "right_arm": ("right_elbow", "right_wrist"),
                "left_leg": ("left_knee", "left_ankle"),
                "right_leg": ("right_knee", "right_ankle"),
                "torso": _SHOULDERS_HIPS,
            },
        ),
        _table(
            "cck4",
            COCO17_NAMES,
            {"head": _FACE, "arms": _ARMS, "legs": _LEGS, "torso": _SHOULDERS_HIPS},
        ),
        _table(
            "cck3",
            COCO17_NAMES,
            {"head": _FACE, "legs": _LEGS, "torso": _SHOULDERS_HIPS + _ARMS},
        ),
        _table("cck2", COCO17_NAMES, {"legs": _LEGS, "torso": _FACE + _SHOULDERS_HIPS + _ARMS}),
        _table("cck1", COCO17_NAMES, {"body": COCO17_NAMES}),
    )
}

_HEAD_FIELDS = (
    *_FACE,
    "left_eye-right_eye",
    "nose-left_eye",
    "nose-right_eye",
    "left_eye-left_ear",
    "right_eye-right_ear",
    "left_ear-left_shoulder",
    "right_ear-right_shoulder",
)

TARGET_GROUPINGS: Mapping[str, Grouping] = {
    g.name: g
    for g in (
        _table(
            "five_v",
            PIFPAF_CHANNEL_NAMES,
            {
                "head": _HEAD_FIELDS,
                "upper_arms_torso": (
                    "left_elbow",
                    "right_elbow",
                    "left_shoulder-left_elbow",
                    "right_shoulder-right_elbow",
                    "left_shoulder",
                    "right_shoulder",
                    "left_shoulder-right_shoulder",
                ),
                # The official table has right_shoulder-right_hip here with no left counterpart.
                "lower_arms_torso": (
                    "left_wrist",
                    "right_wrist",
                    "left_elbow-left_wrist",
                    "right_elbow-right_wrist",
                    "left_hip",
                    "right_hip",
                    "right_shoulder-right_hip",
                ),
                "legs": (
                    "left_hip",
                    "right_hip",
                    "left_knee",
                    "right_knee",
                    "left_ankle-left_knee",
                    "left_knee-left_hip",
                    "right_ankle-right_knee",
                    "right_knee-right_hip",
                ),
                "feet": ("left_ankle", "right_ankle"),
            },
        ),
        _table(
            "eight",
            PIFPAF_CHANNEL_NAMES,
            {
                "head": _HEAD_FIELDS,
                "left_arm": (
                    "left_shoulder",
                    "left_elbow",
                    "left_wrist",
                    "left_shoulder-left_elbow",
                    "left_elbow-left_wrist",
                ),
                "right_arm": (
                    "right_shoulder",
                    "right_elbow",
                    "right_wrist",
                    "right_shoulder-right_elbow",
                    "right_elbow-right_wrist",
                ),
                "torso": (
                    "left_hip",
                    "right_hip",
                    "left_hip-right_hip",
                    "left_shoulder-left_hip",
                    "right_shoulder-right_hip",
                    "left_shoulder-right_shoulder",
                ),
                # The official table puts left_hip-right_hip in left_leg too (it is also in torso).
                "left_leg": (
                    "left_knee",
                    "left_ankle-left_knee",
                    "left_knee-left_hip",
                    "left_hip-right_hip",
                ),
                "right_leg": ("right_knee", "right_ankle-right_knee", "right_knee-right_hip"),
                "left_feet": ("left_ankle",),
                "right_feet": ("right_ankle",),
            },
        ),
    )
}


def _lookup(name: str, kind: str, other_kind: str) -> Grouping:
    registries = {"prompt": PROMPT_GROUPINGS, "target": TARGET_GROUPINGS}
    try:
        return registries[kind][name]
    except KeyError:
        hint = f" ({name!r} is a {other_kind} grouping)" if name in registries[other_kind] else ""
        raise ConfigError(
            f"unknown {kind} grouping {name!r}{hint}; valid names: {', '.join(registries[kind])}"
        ) from None


def prompt_grouping(name: str) -> Grouping:
    """Return the prompt grouping (over the 17 COCO keypoints) called ``name``.

    Raises
    ------
    ConfigError
        If ``name`` is not in ``PROMPT_GROUPINGS``; the message lists the valid names.
    """
    return _lookup(name, "prompt", "target")


def target_grouping(name: str) -> Grouping:
    """Return the target grouping (over the 36 PifPaf label channels) called ``name``.

    Raises
    ------
    ConfigError
        If ``name`` is not in ``TARGET_GROUPINGS``; the message lists the valid names.
    """
    return _lookup(name, "target", "prompt")


def prompt_channel_names(grouping: Grouping) -> tuple[str, ...]:
    """Names of the ``Kp + 2`` prompt channels: background, negative keypoints, then the parts."""
    return ("background", "negative_keypoints", *grouping.part_names)


def group_channels(
    fields: NDArray[np.floating], grouping: Grouping, name: str = "fields"
) -> NDArray[np.floating]:
    """Group source channels into parts: per part, the max over its members, clipped to [0, 1].

    Parameters
    ----------
    fields : ndarray, shape [C, H, W]
        Channel-first source maps, ``C == grouping.num_sources`` (the layout of the official
        ``.npy`` label files; transpose ``[H, W, C]`` arrays first).
    grouping : Grouping
    name : str
        How to name ``fields`` in error messages (e.g. the file it came from).

    Returns
    -------
    ndarray, shape [K, H, W]
        ``K == grouping.num_parts``, same floating dtype as ``fields``.
    """
    arr = np.asarray(fields)
    if arr.ndim != 3 or arr.shape[0] != grouping.num_sources:
        raise KeypointFormatError(
            f"{name}: expected shape [{grouping.num_sources}, H, W] for grouping "
            f"{grouping.name!r}, got {list(arr.shape)}"
        )
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    parts = np.stack([arr[list(idx)].max(axis=0) for idx in grouping.members])
    return np.clip(parts, 0.0, 1.0, out=parts)
