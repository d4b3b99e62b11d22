"""Human-parsing labels → body-part supervision for the part classifier.

Three label sources give the same thing, part scores ``[K, H, W]`` in [0, 1] for a target grouping
(``five_v`` K=5, ``eight`` K=8) at the model's input size:

* official PifPaf fields (``pifpaf36``: ``.npy`` [36, h, w]): grouped by max, resized bilinearly;
* label-map PNGs (``label_map``: uint8 [h, w], class names given by the dataset): fine classes
  mapped to parts with :data:`LABEL_MAP_PARTS`;
* keypoints alone: limb capsules and a torso polygon drawn from the target skeleton
  (:func:`keypoint_regions`), for datasets without parsing labels.

:func:`target_masks` then turns part scores into the official training targets
``[K+1, Hf, Wf]`` (background first) and :func:`pixel_labels` into the per-pixel class labels of
the part-prediction loss.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import ArrayLike, NDArray

from kpr.configuration import as_hw
from kpr.data.samples import ReIDDataset, ReIDSample
from kpr.errors import ConfigError, DatasetError
from kpr.keypoints import (
    COCO17_NAMES,
    NUM_KEYPOINTS,
    PIFPAF_CHANNEL_NAMES,
    VISIBILITY_THRESHOLD,
    Grouping,
    Skeletons,
    group_channels,
    keypoints_in_frame,
    read_keypoints_file,
    target_grouping,
    validate_keypoints,
)
from kpr.keypoints.groupings import BODY_REGIONS

LabelSource = Literal["auto", "parsing", "keypoints"]

BACKGROUND_THRESHOLD = 0.5
"""A pixel is background when every part score is below this."""

SOFTMAX_WEIGHT = 15.0
"""Temperature of the softmax that turns [background, parts] into soft targets."""


LABEL_MAP_PARTS: Mapping[str, Mapping[str, tuple[str, ...]]] = {
    "eight": {
        "head": ("head",),
        "torso": ("torso",),
        "left_upper_arm": ("left_arm",),
        "left_lower_arm": ("left_arm",),
        "right_upper_arm": ("right_arm",),
        "right_lower_arm": ("right_arm",),
        "left_upper_leg": ("left_leg",),
        "left_lower_leg": ("left_leg",),
        "right_upper_leg": ("right_leg",),
        "right_lower_leg": ("right_leg",),
        "left_foot": ("left_feet",),
        "right_foot": ("right_feet",),
    },
    # five_v's PifPaf table puts the shoulders with the upper arms and the hips with the lower
    # arms, so the torso is split at mid-height between shoulders and hips.
    "five_v": {
        "head": ("head",),
        "torso": ("upper_arms_torso", "lower_arms_torso"),
        "left_upper_arm": ("upper_arms_torso",),
        "right_upper_arm": ("upper_arms_torso",),
        "left_lower_arm": ("lower_arms_torso",),
        "right_lower_arm": ("lower_arms_torso",),
        "left_upper_leg": ("legs",),
        "left_lower_leg": ("legs",),
        "right_upper_leg": ("legs",),
        "right_lower_leg": ("legs",),
        "left_foot": ("feet",),
        "right_foot": ("feet",),
    },
}
"""Per target grouping: fine label-map class → the part(s) it feeds. A class listed with two parts
is split horizontally at mid-torso (top → first part). Classes absent from a table (e.g.
``background``) are background."""


class ParsingLabelError(DatasetError):
    """A human-parsing label file is missing, unreadable or has the wrong shape or values."""


PARSING_LABELS_SOURCE = (
    "the human-parsing labels released with KPR "
    "(https://github.com/VlSomers/keypoint_promptable_reidentification, 'Download annotations for "
    "existing datasets'; for Occluded-PoseTrack-ReID they come with its annotations)"
)
"""Where the official recipes' part labels come from, for error messages."""

# Where each adapter with a train split reads its parsing labels (in the dataset folder).
PARSING_LABELS_LOCATION: Mapping[str, str] = {
    "market1501": "masks/<masks_dir>/<split folder>/<image stem>.npy "
    "(dataset option masks_dir, default pifpaf_maskrcnn_filtering)",
    "occluded_duke": "masks/<masks_dir>/<split folder>/<image name>.confidence_fields.npy "
    "(dataset option masks_dir, default pifpaf_maskrcnn_filtering)",
    "occluded_posetrack": "occluded_posetrack_reid/<masks_dir>/anns/<set>_reid_masks_anns.json and "
    "<masks_dir>/<set>/ (dataset option masks_dir, default masks)",
}
_FOLDER_LOCATION = "parsing/<split>/<image stem>.png (classes: dataset.json's parsing_classes)"


# ------------------------------------------------------------------------------------- helpers


def _grouping(grouping: Grouping | str) -> Grouping:
    g = target_grouping(grouping) if isinstance(grouping, str) else grouping
    if g.source_names != PIFPAF_CHANNEL_NAMES:
        raise ConfigError(
            f"grouping {g.name!r} is not a target grouping over the 36 PifPaf channels"
        )
    return g


def resize_channels(
    maps: NDArray[np.floating], out_hw: tuple[int, int], interpolation: int = cv2.INTER_LINEAR
) -> NDArray[np.float32]:
    """Resize every channel of ``maps`` [C, h, w] to [C, H, W] with OpenCV (bilinear by default).

    Channels are resized one by one: OpenCV's multi-channel path rounds differently from the
    official pipeline in the last bit.
    """
    h, w = out_hw
    src = np.asarray(maps, dtype=np.float32)
    if src.shape[1:] == (h, w):
        return src.copy()
    out = np.empty((src.shape[0], h, w), np.float32)
    for c in range(src.shape[0]):
        out[c] = cv2.resize(src[c], (w, h), interpolation=interpolation)
    return out


# --------------------------------------------------------------------------------- file reading


def read_pifpaf36(path: str | Path) -> NDArray[np.float32]:
    """Read an official PifPaf label file.

    Returns
    -------
    ndarray, shape [36, h, w], float32

    Raises
    ------
    ParsingLabelError
        If the file is missing, not a ``.npy`` array, or not of shape [36, h, w].
    """
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ParsingLabelError(f"{path}: cannot read PifPaf label file: {exc}") from exc
    if arr.ndim != 3 or arr.shape[0] != len(PIFPAF_CHANNEL_NAMES) or arr.dtype.kind != "f":
        raise ParsingLabelError(
            f"{path}: expected a float array of shape [36, h, w] (PifPaf fields, channel first), "
            f"got {arr.dtype} {list(arr.shape)}"
        )
    return arr.astype(np.float32, copy=False)


def read_label_map(path: str | Path, num_classes: int | None = None) -> NDArray[np.uint8]:
    """Read a single-channel uint8 part-label PNG.

    Returns
    -------
    ndarray, shape [h, w], uint8, values < ``num_classes`` (when given)

    Raises
    ------
    ParsingLabelError
        If the file is missing or unreadable, not single-channel 8-bit [h, w], or holds a label
        outside ``0 .. num_classes - 1``.
    """
    data = np.fromfile(path, dtype=np.uint8) if Path(path).is_file() else np.empty(0, np.uint8)
    labels = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if labels is None:
        raise ParsingLabelError(f"{path}: label map missing or not a decodable image")
    if labels.ndim != 2 or labels.dtype != np.uint8:
        raise ParsingLabelError(
            f"{path}: expected a single-channel uint8 label map of shape [h, w], "
            f"got {labels.dtype} {list(labels.shape)}"
        )
    top = int(labels.max())
    if num_classes is not None and top >= num_classes:
        raise ParsingLabelError(
            f"{path}: label {top} is outside the {num_classes} parsing classes "
            f"(0..{num_classes - 1})"
        )
    return labels


def read_sample_keypoints(sample: ReIDSample) -> Skeletons:
    """The target and negative skeletons of a sample, in image pixels.

    In-memory arrays take precedence over the keypoint file; no keypoints gives an all-zero target.
    """
    if sample.target_keypoints is not None:
        target = validate_keypoints(sample.target_keypoints, f"{sample.image}: target_keypoints")
        negatives = np.zeros((0, NUM_KEYPOINTS, 3))
        if sample.negative_keypoints is not None:
            negatives = validate_keypoints(
                sample.negative_keypoints, f"{sample.image}: negative_keypoints"
            ).reshape(-1, NUM_KEYPOINTS, 3)
        return Skeletons(target=target.reshape(NUM_KEYPOINTS, 3), negatives=negatives)
    if sample.keypoints is not None:
        return read_keypoints_file(sample.keypoints)
    return Skeletons.empty()


# ---------------------------------------------------------------------------------- PifPaf path


def scores_from_pifpaf(
    fields: NDArray[np.floating], grouping: Grouping | str, out_hw: tuple[int, int]
) -> NDArray[np.float32]:
    """Official PifPaf fields → part scores: per part the max over its member channels, clipped to
    [0, 1], then resized bilinearly to ``out_hw``.

    Parameters
    ----------
    fields : ndarray, shape [36, h, w]
    grouping : Grouping or str
        ``"five_v"``, ``"eight"`` or another grouping over the 36 PifPaf channels.
    out_hw : (int, int)

    Returns
    -------
    ndarray, shape [K, H, W], float32
    """
    g = _grouping(grouping)
    grouped = group_channels(np.asarray(fields, np.float32), g)
    return resize_channels(grouped, as_hw(out_hw, "out_hw"))


# ------------------------------------------------------------------------------- label-map path


@functools.lru_cache(maxsize=64)
def _label_lookup(
    classes: tuple[str, ...], grouping: Grouping
) -> tuple[NDArray[np.intp], tuple[tuple[int, int, int], ...]]:
    """Per fine class: its part channel + 1 (0 = background), and the split classes.

    Returns the lookup table [C] (read-only, cached) and, for classes feeding two parts,
    (class, top part, bottom part).
    """
    try:
        table = LABEL_MAP_PARTS[grouping.name]
    except KeyError:
        raise ConfigError(
            f"no label-map table for grouping {grouping.name!r}; known: {sorted(LABEL_MAP_PARTS)}"
        ) from None
    unknown = [c for c in classes[1:] if c not in table]
    if unknown:
        raise ConfigError(
            f"parsing classes {unknown} have no part in the {grouping.name!r} table; "
            f"known classes: {sorted(table)}"
        )
    lut = np.zeros(len(classes), np.intp)
    splits = []
    for i, name in enumerate(classes[1:], start=1):
        parts = [grouping.part_names.index(p) for p in table[name]]
        lut[i] = parts[0] + 1
        if len(parts) == 2:
            splits.append((i, parts[0], parts[1]))
    lut.setflags(write=False)
    return lut, tuple(splits)


def torso_split_row(target: NDArray[np.floating] | None) -> float | None:
    """Row halfway between the mean visible shoulder and the mean visible hip, if both exist."""
    if target is None:
        return None
    visible = target[:, 2] > VISIBILITY_THRESHOLD
    shoulders = [i for i in (5, 6) if visible[i]]
    hips = [i for i in (11, 12) if visible[i]]
    if not shoulders or not hips:
        return None
    return float(0.5 * (target[shoulders, 1].mean() + target[hips, 1].mean()))


def scores_from_label_map(
    labels: NDArray[np.integer],
    classes: Sequence[str],
    grouping: Grouping | str,
    out_hw: tuple[int, int],
    split_row: float | None = None,
) -> NDArray[np.float32]:
    """Label map → one-hot part scores, resized bilinearly to ``out_hw``.

    Parameters
    ----------
    labels : ndarray, shape [h, w]
        Indices into ``classes``; index 0 is background.
    classes : sequence of str
        Class names, mapped to parts by :data:`LABEL_MAP_PARTS`.
    grouping : Grouping or str
    out_hw : (int, int)
    split_row : float, optional
        Row (in label-map pixels) where classes feeding two parts are split; default: the middle
        of those classes' vertical extent.

    Returns
    -------
    ndarray, shape [K, H, W], float32
    """
    g = _grouping(grouping)
    lut, splits = _label_lookup(tuple(classes), g)
    part_of = lut[np.asarray(labels)]
    rows = np.arange(part_of.shape[0])[:, None]
    for cls, top, bottom in splits:
        where = labels == cls
        if not where.any():
            continue
        row = split_row
        if row is None:
            ys = np.nonzero(where.any(axis=1))[0]
            row = 0.5 * (ys[0] + ys[-1])
        part_of[where & (rows > row)] = bottom + 1
        part_of[where & (rows <= row)] = top + 1
    onehot = (part_of[None] == np.arange(1, g.num_parts + 1)[:, None, None]).astype(np.float32)
    return resize_channels(onehot, as_hw(out_hw, "out_hw"))


# ------------------------------------------------------------------------------- keypoint path

_J = {name: i for i, name in enumerate(COCO17_NAMES)}
_FACE = tuple(_J[n] for n in ("nose", "left_eye", "right_eye", "left_ear", "right_ear"))
_TORSO = tuple(_J[n] for n in ("left_shoulder", "right_shoulder", "right_hip", "left_hip"))
# Lengthwise bones and their share of body height (adult anthropometric averages).
_BONE_SHARE: tuple[tuple[int, int, float], ...] = tuple(
    (_J[a], _J[b], share)
    for side in ("left", "right")
    for a, b, share in (
        (f"{side}_shoulder", f"{side}_elbow", 0.186),
        (f"{side}_elbow", f"{side}_wrist", 0.146),
        (f"{side}_hip", f"{side}_knee", 0.245),
        (f"{side}_knee", f"{side}_ankle", 0.246),
        (f"{side}_shoulder", f"{side}_hip", 0.288),
    )
)
# Region widths as shares of body height.
_LIMB_WIDTH = {"upper_arm": 0.058, "lower_arm": 0.048, "upper_leg": 0.085, "lower_leg": 0.065}
_HEAD_AXES = (0.052, 0.068)
_NECK_WIDTH = 0.05
_TORSO_MARGIN = 0.03
_FOOT_RADIUS = 0.03
_FOOT_DROP = 0.015
_HAND_EXTENSION = 0.25
_REGION = {name: i for i, name in enumerate(BODY_REGIONS)}
# Fixed-point drawing keeps sub-pixel keypoint positions.
_SHIFT = 3
_ONE = 1 << _SHIFT


def person_height(target: NDArray[np.floating], frame_h: int) -> float:
    """Body height in pixels: median over visible lengthwise bones of length / typical share.

    Falls back to 0.85 × ``frame_h`` (a person crop roughly spans its frame) without any bone.

    Parameters
    ----------
    target : ndarray, shape [17, 3]
    frame_h : int
    """
    visible = target[:, 2] > VISIBILITY_THRESHOLD
    estimates = [
        float(np.hypot(*(target[a, :2] - target[b, :2]))) / share
        for a, b, share in _BONE_SHARE
        if visible[a] and visible[b]
    ]
    estimates = [e for e in estimates if e > 0]
    return float(np.median(estimates)) if estimates else 0.85 * frame_h


def _fixed(p: NDArray[np.floating]) -> tuple[int, int]:
    return round(float(p[0]) * _ONE), round(float(p[1]) * _ONE)


def _capsule(canvas: NDArray[np.uint8], p: NDArray, q: NDArray, width: float, label: int) -> None:
    cv2.line(canvas, _fixed(p), _fixed(q), label, max(1, round(width)), cv2.LINE_8, _SHIFT)


def _disc(canvas: NDArray[np.uint8], c: NDArray, axes: tuple[float, float], label: int) -> None:
    ax = (max(1, round(axes[0] * _ONE)), max(1, round(axes[1] * _ONE)))
    cv2.ellipse(canvas, _fixed(c), ax, 0.0, 0.0, 360.0, label, -1, cv2.LINE_8, _SHIFT)


def keypoint_regions(target: ArrayLike, out_hw: tuple[int, int]) -> NDArray[np.uint8]:
    """Draw a fine body-region map (classes :data:`BODY_REGIONS`) from one skeleton.

    Only keypoints with c > 0.3 inside the frame are used, so occluded body parts stay
    background. Sizes scale
    with :func:`person_height`: a filled polygon over the visible shoulders and hips (grown by a
    margin) for the torso, capsules for upper/lower arms and legs (a visible wrist extends its
    forearm by a hand), an ellipse around the face points plus a neck for the head, and a disc
    just below each ankle for the feet. Joints with no visible neighbour still get a disc of their
    limb's width. Later regions overwrite earlier ones: torso, legs, feet, arms, head.

    Parameters
    ----------
    target : array_like, shape [17, 3]
        (x, y, c) in output pixels.
    out_hw : (int, int)

    Returns
    -------
    ndarray, shape [H, W], uint8
    """
    kps = validate_keypoints(target, "target").reshape(NUM_KEYPOINTS, 3)
    h, w = as_hw(out_hw, "out_hw")
    canvas = np.zeros((h, w), np.uint8)
    visible = (kps[:, 2] > VISIBILITY_THRESHOLD) & keypoints_in_frame(kps, (h, w))
    if not visible.any():
        return canvas
    xy = kps[:, :2]
    size = person_height(kps, h)

    torso = [xy[i] for i in _TORSO if visible[i]]
    if torso:
        margin = max(1.0, 2 * _TORSO_MARGIN * size)
        pts = np.array([_fixed(p) for p in torso], np.int32)
        if len(pts) >= 3:
            cv2.fillPoly(canvas, [cv2.convexHull(pts)], _REGION["torso"], cv2.LINE_8, _SHIFT)
        cv2.polylines(canvas, [pts], True, _REGION["torso"], round(margin), cv2.LINE_8, _SHIFT)

    def limb(a: str, b: str, region: str, kind: str, extend: float = 0.0) -> None:
        i, j = _J[a], _J[b]
        width = _LIMB_WIDTH[kind] * size
        if visible[i] and visible[j]:
            end = xy[j] + extend * (xy[j] - xy[i])
            _capsule(canvas, xy[i], end, width, _REGION[region])
        for k in (i, j):
            if visible[k]:
                _disc(canvas, xy[k], (width / 2, width / 2), _REGION[region])

    for side in ("left", "right"):
        limb(f"{side}_hip", f"{side}_knee", f"{side}_upper_leg", "upper_leg")
        limb(f"{side}_knee", f"{side}_ankle", f"{side}_lower_leg", "lower_leg")
    for side in ("left", "right"):
        ankle = _J[f"{side}_ankle"]
        if visible[ankle]:
            centre = xy[ankle] + np.array([0.0, _FOOT_DROP * size])
            r = _FOOT_RADIUS * size
            _disc(canvas, centre, (r, r), _REGION[f"{side}_foot"])
    for side in ("left", "right"):
        limb(f"{side}_shoulder", f"{side}_elbow", f"{side}_upper_arm", "upper_arm")
        limb(f"{side}_elbow", f"{side}_wrist", f"{side}_lower_arm", "lower_arm", _HAND_EXTENSION)

    face = [i for i in _FACE if visible[i]]
    if face:
        centre = xy[face].mean(axis=0)
        shoulders = [i for i in (_J["left_shoulder"], _J["right_shoulder"]) if visible[i]]
        if len(shoulders) == 2:
            neck = xy[shoulders].mean(axis=0)
            _capsule(canvas, centre, neck, _NECK_WIDTH * size, _REGION["head"])
        _disc(canvas, centre, (_HEAD_AXES[0] * size, _HEAD_AXES[1] * size), _REGION["head"])
    return canvas


def scores_from_keypoints(
    target: ArrayLike, grouping: Grouping | str, out_hw: tuple[int, int]
) -> NDArray[np.float32]:
    """Part scores drawn from the target skeleton alone (see :func:`keypoint_regions`).

    Parameters
    ----------
    target : array_like, shape [17, 3]
        (x, y, c) in output pixels.
    grouping : Grouping or str
    out_hw : (int, int)

    Returns
    -------
    ndarray, shape [K, H, W], float32, values in {0, 1}
    """
    kps = validate_keypoints(target, "target").reshape(NUM_KEYPOINTS, 3)
    regions = keypoint_regions(kps, out_hw)
    return scores_from_label_map(regions, BODY_REGIONS, grouping, out_hw, torso_split_row(kps))


# ------------------------------------------------------------------------------------ dispatch


def _rescaled_target(
    skeletons: Skeletons, from_hw: tuple[int, int], to_hw: tuple[int, int]
) -> NDArray[np.float64]:
    target = skeletons.target.copy()
    target[:, 0] *= to_hw[1] / from_hw[1]
    target[:, 1] *= to_hw[0] / from_hw[0]
    return target


def part_scores(
    sample: ReIDSample,
    grouping: Grouping | str,
    out_hw: tuple[int, int],
    *,
    parsing_classes: Sequence[str] | None = None,
    skeletons: Skeletons | None = None,
    image_hw: tuple[int, int] | None = None,
    source: LabelSource = "auto",
    load_label_map: Callable[[Path, int], NDArray[np.uint8]] | None = None,
) -> NDArray[np.float32]:
    """Load a sample's body-part labels as part scores at the model's input size.

    Parameters
    ----------
    sample : ReIDSample
    grouping : Grouping or str
        Target grouping, e.g. ``"five_v"`` or ``"eight"``.
    out_hw : (int, int)
        The model's input (H, W).
    parsing_classes : sequence of str, optional
        Class names of ``label_map`` files (``ReIDDataset.parsing_classes``).
    skeletons : Skeletons, optional
        The sample's keypoints if already loaded (read from the sample otherwise, when needed).
        Used to draw labels from keypoints and to split the torso of label maps for ``five_v``.
    image_hw : (int, int), optional
        Size of the image the keypoints refer to; None means they are already in output pixels.
    source : {"auto", "parsing", "keypoints"}
        ``"parsing"``: the sample's parsing file (an error if it has none). ``"keypoints"``:
        drawn from the target skeleton. ``"auto"``: the parsing file if any, else keypoints.
    load_label_map : callable, optional
        ``(path, num_classes) → [h, w] uint8`` reader of ``label_map`` files (default
        :func:`read_label_map`; the training loader passes one that keeps decoded maps).

    Returns
    -------
    ndarray, shape [K, H, W], float32, values in [0, 1]
        All zeros (everything background) when the sample has neither labels nor keypoints.

    Raises
    ------
    ParsingLabelError
        On a missing, unreadable or wrongly shaped label file, or ``source="parsing"`` for a
        sample without one.
    """
    out_hw = as_hw(out_hw, "out_hw")
    g = _grouping(grouping)
    keypoints_hw = out_hw if image_hw is None else as_hw(image_hw, "image_hw")
    use_file = source == "parsing" or (source == "auto" and sample.parsing is not None)
    if use_file:
        if sample.parsing is None or sample.parsing_format is None:
            raise ParsingLabelError(
                f"{sample.image}: no parsing label file; label_source 'parsing' needs "
                f"{PARSING_LABELS_SOURCE} (docs/parsing_labels.md)"
            )
        if sample.parsing_format == "pifpaf36":
            return scores_from_pifpaf(read_pifpaf36(sample.parsing), g, out_hw)
        if parsing_classes is None:
            raise ConfigError(
                f"{sample.parsing}: label_map files need the dataset's parsing_classes"
            )
        read = read_label_map if load_label_map is None else load_label_map
        labels = read(Path(sample.parsing), len(parsing_classes))
        skel = skeletons if skeletons is not None else read_sample_keypoints(sample)
        split = torso_split_row(_rescaled_target(skel, keypoints_hw, labels.shape))
        return scores_from_label_map(labels, parsing_classes, g, out_hw, split)
    skel = skeletons if skeletons is not None else read_sample_keypoints(sample)
    return scores_from_keypoints(_rescaled_target(skel, keypoints_hw, out_hw), g, out_hw)


def require_parsing_labels(dataset: ReIDDataset) -> None:
    """Check once, before training, that every training sample has a parsing-label file.

    ``label_source="parsing"`` (the official recipes) would otherwise fail at the first sample
    without one, or, skipping bad samples, train on a fraction of the data.

    Raises
    ------
    DatasetError
        Naming the dataset, how many training images lack labels (and one of them), where the
        adapter reads the labels and where to get them.
    """
    missing = [s for s in dataset.train if s.parsing is None or s.parsing_format is None]
    if not missing:
        return
    location = PARSING_LABELS_LOCATION.get(dataset.name, _FOLDER_LOCATION)
    raise DatasetError(
        f"{dataset.name}: label_source 'parsing' needs human-parsing labels, but {len(missing)} "
        f"of {len(dataset.train)} training images have none (e.g. {missing[0].image}). "
        f"{dataset.name} reads them from {location} in the dataset folder. "
        f"Get {PARSING_LABELS_SOURCE}, "
        "or set label_source=keypoints to train on labels drawn from the keypoints (not the "
        "paper's targets); see docs/parsing_labels.md"
    )


# ------------------------------------------------------------------------------ target masks


def target_masks(scores: ArrayLike | torch.Tensor, feature_hw: tuple[int, int]) -> torch.Tensor:
    """Part scores → the official soft training targets of the part classifier.

    Background = 1 where every part is below 0.5 (else 0), prepended as channel 0; then
    softmax(15 · x) over the K + 1 channels and a bilinear resize (align_corners=False) to the
    feature map.

    Parameters
    ----------
    scores : array_like or Tensor, shape [K, H, W] or [N, K, H, W]
    feature_hw : (int, int)
        (Hf, Wf), usually (H / 4, W / 4).

    Returns
    -------
    Tensor, shape [K+1, Hf, Wf] or [N, K+1, Hf, Wf], float32
        Channel 0 is the background; every pixel sums to 1.
    """
    s = torch.as_tensor(scores, dtype=torch.float32)
    if s.ndim not in (3, 4):
        raise ConfigError(f"scores: expected [K, H, W] or [N, K, H, W], got {list(s.shape)}")
    batched = s if s.ndim == 4 else s[None]
    background = (batched.amax(dim=1, keepdim=True) < BACKGROUND_THRESHOLD).to(torch.float32)
    probs = torch.softmax(SOFTMAX_WEIGHT * torch.cat([background, batched], dim=1), dim=1)
    size = as_hw(feature_hw, "feature_hw")
    out = F.interpolate(probs, size=size, mode="bilinear", align_corners=False)
    return out if s.ndim == 4 else out[0]


def pixel_labels(masks: ArrayLike | torch.Tensor) -> torch.Tensor:
    """Per-pixel class labels (argmax over channels, ties → lowest index).

    Parameters
    ----------
    masks : Tensor, shape [K+1, Hf, Wf] or [N, K+1, Hf, Wf]

    Returns
    -------
    Tensor, shape [Hf, Wf] or [N, Hf, Wf], int64; 0 = background, k = part k.
    """
    m = torch.as_tensor(masks)
    return m.argmax(dim=-3)


def feature_size(image_hw: tuple[int, int], stride: int = 4) -> tuple[int, int]:
    """(Hf, Wf) of the feature map for an input (H, W): the stride-4 patch grid of the backbone."""
    h, w = as_hw(image_hw, "image_hw")
    return h // stride, w // stride
