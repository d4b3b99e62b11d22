"""Read, validate and write keypoint files in the official on-disk JSON layout.

The layout is a list of skeleton dicts ``{"keypoints": [[x, y, c] x 17] or [51 numbers],
"is_target": bool}``; PifPaf ``*.predictions.json`` files (extra ``bbox``/``score``/... fields, no
``is_target``) have the same shape. Coordinates are pixels of the original crop.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from kpr.errors import KeypointFormatError
from kpr.io_utils import write_text_atomic
from kpr.keypoints.coco import COCO17_NAMES, NUM_KEYPOINTS


@dataclass(frozen=True, eq=False)
class Skeletons:
    """The target person's keypoints and those of the other people in the crop.

    Attributes
    ----------
    target : ndarray, shape [17, 3], float64
        (x, y, c) per COCO keypoint; all zeros when the file holds no skeleton.
    negatives : ndarray, shape [M, 17, 3], float64
        The other skeletons in file order; M may be 0.
    """

    target: NDArray[np.float64]
    negatives: NDArray[np.float64]

    @classmethod
    def empty(cls) -> Skeletons:
        return cls(np.zeros((NUM_KEYPOINTS, 3)), np.zeros((0, NUM_KEYPOINTS, 3)))

    @property
    def num_negatives(self) -> int:
        return int(self.negatives.shape[0])


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_values(kps: NDArray[np.float64], where: str) -> None:
    """Raise on the first non-finite value or confidence outside [0, 1] of a [..., 17, 3] array."""
    bad = ~np.isfinite(kps).all(axis=-1) | (kps[..., 2] < 0) | (kps[..., 2] > 1)
    if not bad.any():
        return
    pos = tuple(int(i) for i in np.argwhere(bad)[0])
    point = pos[-1]
    prefix = f"skeleton {pos[0]} " if len(pos) == 2 else ""
    x, y, c = kps[pos]
    problem = (
        "confidence is not in [0, 1]" if np.isfinite(kps[pos]).all() else "has a non-finite value"
    )
    raise KeypointFormatError(
        f"{where}: {prefix}point {point} ({COCO17_NAMES[point]}) {problem}: ({x}, {y}, {c})"
    )


def _parse_points(value: object, where: str) -> NDArray[np.float64]:
    if not isinstance(value, (list, tuple)):
        raise KeypointFormatError(
            f"{where}: expected a list of 17×3 or 51 numbers, got {type(value).__name__}"
        )
    if value and all(isinstance(p, (list, tuple)) for p in value):
        if len(value) != NUM_KEYPOINTS:
            raise KeypointFormatError(
                f"{where}: expected 17×3 or 51 numbers, got {len(value)} points"
            )
        for j, p in enumerate(value):
            if len(p) != 3:
                raise KeypointFormatError(
                    f"{where}: point {j} ({COCO17_NAMES[j]}) has {len(p)} values, expected 3"
                )
        flat = [v for p in value for v in p]
    else:
        if len(value) != 3 * NUM_KEYPOINTS:
            raise KeypointFormatError(f"{where}: expected 17×3 or 51 numbers, got {len(value)}")
        flat = list(value)
    for k, v in enumerate(flat):
        if not _is_number(v):
            raise KeypointFormatError(
                f"{where}: point {k // 3} ({COCO17_NAMES[k // 3]}) has a non-numeric value {v!r}"
            )
    kps = np.asarray(flat, dtype=np.float64).reshape(NUM_KEYPOINTS, 3)
    _check_values(kps, where)
    return kps


def parse_keypoints_json(obj: Any, source: str = "<keypoints>") -> Skeletons:
    """Turn decoded keypoint-file JSON into the target skeleton and the negatives.

    Target selection follows the official reader: if no skeleton has ``is_target``, the first one
    is the target; otherwise the one skeleton with ``is_target: true`` is (several are an error,
    as docs/dataset_format.md says), and every other skeleton is a negative, in file order. A
    single dict is one target skeleton; ``null`` or an empty list means no keypoints.

    Parameters
    ----------
    obj : list of dict, dict or None
        Decoded JSON content.
    source : str
        File name used in error messages.

    Returns
    -------
    Skeletons
        ``target`` [17, 3] and ``negatives`` [M, 17, 3], float64.

    Raises
    ------
    KeypointFormatError
        On a wrong layout, point count, non-numeric or non-finite value, confidence outside
        [0, 1], non-boolean ``is_target``, or ``is_target`` fields not exactly one of which is true.
    """
    if obj is None:
        return Skeletons.empty()
    entries = [obj] if isinstance(obj, dict) else obj
    if not isinstance(entries, list):
        raise KeypointFormatError(
            f"{source}: expected a list of skeleton objects, got {type(obj).__name__}"
        )
    if not entries:
        return Skeletons.empty()
    skeletons: list[NDArray[np.float64]] = []
    flags: list[bool | None] = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise KeypointFormatError(
                f"{source}: skeleton {i}: expected an object, got {type(entry).__name__}"
            )
        if "keypoints" not in entry:
            raise KeypointFormatError(f"{source}: skeleton {i}: missing field 'keypoints'")
        where = f"{source}: skeleton {i} field 'keypoints'"
        skeletons.append(_parse_points(entry["keypoints"], where))
        flag = entry.get("is_target")
        if "is_target" in entry and not isinstance(flag, bool):
            raise KeypointFormatError(
                f"{source}: skeleton {i} field 'is_target': expected true or false, got {flag!r}"
            )
        flags.append(flag)
    if isinstance(obj, dict) or all(f is None for f in flags):
        target_index = 0
    else:
        marked = [i for i, f in enumerate(flags) if f]
        if len(marked) != 1:
            raise KeypointFormatError(
                f"{source}: field 'is_target': exactly one skeleton must be true, "
                f"got {len(marked)} of {len(entries)}"
                + (f" (skeletons {marked})" if marked else "")
            )
        target_index = marked[0]
    negatives = [s for i, s in enumerate(skeletons) if i != target_index]
    return Skeletons(
        target=skeletons[target_index],
        negatives=np.stack(negatives) if negatives else np.zeros((0, NUM_KEYPOINTS, 3)),
    )


def read_keypoints_file(path: str | os.PathLike[str]) -> Skeletons:
    """Read an official keypoints JSON file (or a PifPaf ``*.predictions.json``).

    Raises
    ------
    KeypointFormatError
        If the file cannot be read, is not valid JSON, or its content is malformed; the message
        names the file and the field.
    """
    name = os.fspath(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise KeypointFormatError(f"{name}: cannot read keypoints file: {exc}") from exc
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise KeypointFormatError(
            f"{name}: malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from exc
    return parse_keypoints_json(obj, source=name)


def validate_keypoints(kps: ArrayLike, name: str) -> NDArray[np.float64]:
    """Check a user-supplied keypoint array and return it as float64.

    Points outside the image are allowed (the prompt builder ignores them).

    Parameters
    ----------
    kps : array_like, shape [17, 3] or [M, 17, 3]
        (x, y, c) per keypoint.
    name : str
        How to name the array in error messages.

    Raises
    ------
    KeypointFormatError
        On a wrong shape, a non-numeric dtype, a non-finite value or a confidence outside [0, 1].
    """
    try:
        raw = np.asarray(kps)
    except ValueError as exc:
        raise KeypointFormatError(f"{name}: not a rectangular keypoint array: {exc}") from exc
    if raw.dtype.kind not in "iuf":
        raise KeypointFormatError(f"{name}: not a numeric keypoint array (dtype {raw.dtype})")
    arr = raw.astype(np.float64, copy=False)
    if arr.shape[-2:] != (NUM_KEYPOINTS, 3) or arr.ndim not in (2, 3):
        raise KeypointFormatError(
            f"{name}: expected shape [17, 3] or [M, 17, 3], got {list(arr.shape)}"
        )
    _check_values(arr, name)
    return arr


def write_keypoints_file(
    path: str | os.PathLike[str], target: ArrayLike, negatives: ArrayLike | None = None
) -> None:
    """Write skeletons atomically in the official layout: the target first, then the negatives.

    Parameters
    ----------
    path : path-like
    target : array_like, shape [17, 3]
    negatives : array_like, shape [M, 17, 3], optional
        A single [17, 3] skeleton is taken as M = 1.
    """
    name = os.fspath(path)
    tgt = validate_keypoints(target, f"{name}: target")
    if tgt.ndim != 2:
        raise KeypointFormatError(f"{name}: target: expected shape [17, 3], got {list(tgt.shape)}")
    negs = np.zeros((0, NUM_KEYPOINTS, 3))
    if negatives is not None:
        negs = validate_keypoints(negatives, f"{name}: negatives").reshape(-1, NUM_KEYPOINTS, 3)
    entries = [{"keypoints": tgt.tolist(), "is_target": True}]
    entries += [{"keypoints": n.tolist(), "is_target": False} for n in negs]
    write_text_atomic(path, json.dumps(entries, allow_nan=False) + "\n")
