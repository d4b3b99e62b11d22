"""BIPO: Batch-wise Inter-Person Occlusion (KPR §3.5).

A training image gets another identity of its batch pasted over it (the occluder). The image, the
part scores and the keypoints are updated together: target parts under the occluder fade to
background, target and negative keypoints under it are dropped, and the occluder's own visible
keypoints become a new negative skeleton. A person mask (mask prompts) is updated too: the pasted
person becomes "other people" wherever it covers the frame.

Occluders come from an :class:`OccluderBank` built once from the training split: a few images per
identity, each cut out along the person silhouette given by its parsing labels.

Differences from the official implementation (on purpose): the occluder's invisible keypoints stay
invisible (officially c is forced to 1 on all 17, adding spurious negatives at the shifted origin),
an occluder keypoint keeps its confidence (so, like a positive prompt, only c > 0.3 is drawn),
occluder images are resized bicubically as the official code intends (its flag lands in the ``dst``
argument of ``cv2.resize``, so it actually resizes bilinearly), and a bank entry stores only the
bounding box of its silhouette.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray

from kpr.data.parsing import (
    keypoint_regions,
    read_label_map,
    read_pifpaf36,
    read_sample_keypoints,
)
from kpr.data.samples import ReIDSample
from kpr.errors import ConfigError, KPRError
from kpr.imaging import read_rgb
from kpr.keypoints import NUM_KEYPOINTS, keypoints_in_frame, rescale_keypoints
from kpr.masks import OTHERS

SILHOUETTE_THRESHOLD = 0.2
"""Soft silhouette level above which a pixel belongs to the person."""

MIN_KEYPOINT_ALPHA = 0.001
"""An occluder keypoint is kept only where its own alpha reaches this."""

PLACEMENT_ROWS = (0.55, 0.75)
"""The occluder centre is placed at a row drawn from [0.55 H, 0.75 H): mostly downwards."""

_DILATE_KERNEL = np.ones((5, 5), np.uint8)
_BLUR_SIZE = (9, 9)


@dataclass(frozen=True, eq=False)
class Occluder:
    """One cut-out person, stored as the bounding box of its silhouette in an H×W frame.

    Attributes
    ----------
    pid : int
    rgb : ndarray, shape [h, w, 3], uint8
        Pixels of the box (the frame is the image resized to H×W).
    alpha : ndarray, shape [h, w], float32
        Blurred silhouette in [0, 1].
    top_left : (int, int)
        (y0, x0) of the box in the frame.
    keypoints : ndarray, shape [17, 3], float64
        The person's skeleton in frame pixels; points outside the frame or the silhouette are
        (0, 0, 0).
    frame_hw : (int, int)
        (H, W) of the frame.
    source : Path
        The image it was cut from.
    """

    pid: int
    rgb: NDArray[np.uint8]
    alpha: NDArray[np.float32]
    top_left: tuple[int, int]
    keypoints: NDArray[np.float64]
    frame_hw: tuple[int, int]
    source: Path


@dataclass(frozen=True, eq=False)
class BipoResult:
    """A training sample after BIPO.

    Attributes
    ----------
    image : ndarray, shape [H, W, 3], uint8
    part_scores : ndarray, shape [K, H, W], float32, or None
    target : ndarray, shape [17, 3]
        Keypoints under the occluder have c = 0.
    negatives : ndarray, shape [M + 1, 17, 3]
        The input negatives (occluded points with c = 0), then the occluder's skeleton.
    alpha : ndarray, shape [H, W], float32
        The occluder's alpha as pasted.
    occluder_pid : int
    person_mask : ndarray, shape [H, W], uint8, or None
        The input person mask with the occluder's pixels (alpha > 0.5) set to "other people".
    """

    image: NDArray[np.uint8]
    part_scores: NDArray[np.float32] | None
    target: NDArray[np.float64]
    negatives: NDArray[np.float64]
    alpha: NDArray[np.float32]
    occluder_pid: int
    person_mask: NDArray[np.uint8] | None = None


# ------------------------------------------------------------------------------------- silhouettes


def soft_silhouette(sample: ReIDSample, frame_hw: tuple[int, int], target: NDArray) -> NDArray:
    """The person's soft silhouette [H, W] in [0, 1] from the sample's labels.

    PifPaf fields: resized bilinearly (align_corners=True) to H×W, then max over the 36 channels.
    Label maps: label > 0 (nearest resize). No labels: the regions drawn from ``target`` (already
    in frame pixels) by :func:`kpr.data.parsing.keypoint_regions`.
    """
    h, w = frame_hw
    if sample.parsing is not None and sample.parsing_format == "pifpaf36":
        fields = torch.from_numpy(read_pifpaf36(sample.parsing))[None]
        resized = F.interpolate(fields, size=(h, w), mode="bilinear", align_corners=True)
        return resized[0].amax(dim=0).numpy()
    if sample.parsing is not None and sample.parsing_format == "label_map":
        labels = read_label_map(sample.parsing)
        person = (labels > 0).astype(np.float32)
        return cv2.resize(person, (w, h), interpolation=cv2.INTER_NEAREST)
    return (keypoint_regions(target, frame_hw) > 0).astype(np.float32)


def silhouette_alpha(soft: NDArray[np.floating]) -> NDArray[np.float32] | None:
    """Soft silhouette → alpha matte: threshold 0.2, dilate 5×5, fill the largest outer contour,
    Gaussian blur 9×9. None when nothing passes the threshold.

    Parameters
    ----------
    soft : ndarray, shape [H, W]

    Returns
    -------
    ndarray, shape [H, W], float32 in [0, 1], or None
    """
    binary = np.where(np.asarray(soft) > SILHOUETTE_THRESHOLD, 255, 0).astype(np.uint8)
    binary = cv2.dilate(binary, _DILATE_KERNEL, iterations=1)
    contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return None
    largest = max(contours, key=cv2.contourArea)
    filled = np.zeros(binary.shape, np.float32)
    cv2.drawContours(filled, [largest], -1, 1.0, thickness=cv2.FILLED)
    return cv2.GaussianBlur(filled, _BLUR_SIZE, 0)


def _rounded_index(kps: NDArray, hw: tuple[int, int]) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """(rows, cols) of the pixels under each keypoint, clipped into the frame."""
    rows = np.clip(np.rint(kps[..., 1]), 0, hw[0] - 1).astype(np.intp)
    cols = np.clip(np.rint(kps[..., 0]), 0, hw[1] - 1).astype(np.intp)
    return rows, cols


def make_occluder(sample: ReIDSample, frame_hw: tuple[int, int]) -> Occluder | None:
    """Cut the sample's person out of its image resized (bicubic) to ``frame_hw``; None without
    silhouette.

    The skeleton keeps the points that lie in the frame, have c > 0 and alpha ≥ 0.001.
    """
    image = read_rgb(sample.image)
    orig_hw = image.shape[:2]
    h, w = frame_hw
    frame = cv2.resize(image, (w, h), interpolation=cv2.INTER_CUBIC)
    target = rescale_keypoints(read_sample_keypoints(sample).target, orig_hw, frame_hw)
    alpha = silhouette_alpha(soft_silhouette(sample, frame_hw, target))
    if alpha is None:
        return None
    rows, cols = _rounded_index(target, frame_hw)
    keep = (target[:, 2] > 0) & keypoints_in_frame(target, frame_hw)
    keep &= alpha[rows, cols] >= MIN_KEYPOINT_ALPHA
    target[~keep] = 0.0
    ys, xs = np.nonzero(alpha > 0)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    return Occluder(
        pid=sample.pid,
        rgb=np.ascontiguousarray(frame[y0:y1, x0:x1]),
        alpha=np.ascontiguousarray(alpha[y0:y1, x0:x1]),
        top_left=(int(y0), int(x0)),
        keypoints=target,
        frame_hw=(h, w),
        source=Path(sample.image),
    )


# ------------------------------------------------------------------------------------------ bank


@dataclass(frozen=True, eq=False)
class OccluderBank:
    """Occluders per identity, built once from the training split.

    Attributes
    ----------
    by_pid : mapping int → tuple of Occluder
    frame_hw : (int, int)
        The image size every occluder was cut at (the model's input size).
    skipped : tuple of (Path, str)
        Samples left out (no silhouette, or unreadable with ``on_error="skip"``) and why.
    """

    by_pid: Mapping[int, tuple[Occluder, ...]]
    frame_hw: tuple[int, int]
    skipped: tuple[tuple[Path, str], ...] = ()
    _pids: tuple[int, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_pids", tuple(sorted(self.by_pid)))

    @classmethod
    def from_samples(
        cls,
        samples: Sequence[ReIDSample],
        image_size: tuple[int, int],
        *,
        per_id: int = 5,
        seed: int = 0,
        on_error: Literal["raise", "skip"] = "raise",
    ) -> OccluderBank:
        """Pick up to ``per_id`` random images per identity and cut their people out.

        Parameters
        ----------
        samples : sequence of ReIDSample
            The training split.
        image_size : (int, int)
            The model's input (H, W); occluders are pasted at this size, never rescaled.
        per_id : int
        seed : int
            Seed of the per-identity image choice.
        on_error : {"raise", "skip"}
            What to do with an unreadable image or label file.
        """
        if per_id < 1:
            raise ConfigError(f"per_id must be >= 1, got {per_id}")
        frame_hw = (int(image_size[0]), int(image_size[1]))
        rng = np.random.default_rng(seed)
        groups: dict[int, list[ReIDSample]] = defaultdict(list)
        for s in samples:
            groups[s.pid].append(s)
        by_pid: dict[int, tuple[Occluder, ...]] = {}
        skipped: list[tuple[Path, str]] = []
        for pid in sorted(groups):
            members = groups[pid]
            chosen = rng.choice(len(members), size=min(per_id, len(members)), replace=False)
            made = []
            for i in sorted(chosen.tolist()):
                try:
                    occluder = make_occluder(members[i], frame_hw)
                except KPRError as exc:
                    if on_error == "raise":
                        raise
                    skipped.append((Path(members[i].image), str(exc)))
                    continue
                if occluder is None:
                    skipped.append((Path(members[i].image), "no silhouette"))
                else:
                    made.append(occluder)
            if made:
                by_pid[pid] = tuple(made)
        return cls(by_pid=by_pid, frame_hw=frame_hw, skipped=tuple(skipped))

    @property
    def pids(self) -> tuple[int, ...]:
        return self._pids

    def __len__(self) -> int:
        return sum(len(v) for v in self.by_pid.values())

    def pick(
        self, pid: int, batch_pids: Iterable[int], rng: np.random.Generator
    ) -> Occluder | None:
        """Choose an occluder for a sample of identity ``pid``.

        The first bank identity among the other ids of the batch (in random order), else a random
        bank identity other than ``pid``; then one of its occluders at random. None when the bank
        holds no other identity.
        """
        others = sorted(p for p in set(batch_pids) if p != pid and p in self.by_pid)
        if others:
            chosen = others[int(rng.integers(len(others)))]
        else:
            pool = [p for p in self._pids if p != pid]
            if not pool:
                return None
            chosen = pool[int(rng.integers(len(pool)))]
        entries = self.by_pid[chosen]
        return entries[int(rng.integers(len(entries)))]


# ----------------------------------------------------------------------------------------- apply


def _paste_window(
    occluder: Occluder, dy: int, dx: int, hw: tuple[int, int]
) -> tuple[slice, slice, slice, slice] | None:
    """Frame and occluder-box slices of the shifted box's overlap with the frame."""
    oh, ow = occluder.alpha.shape
    top, left = occluder.top_left[0] + dy, occluder.top_left[1] + dx
    fy0, fy1 = max(top, 0), min(top + oh, hw[0])
    fx0, fx1 = max(left, 0), min(left + ow, hw[1])
    if fy0 >= fy1 or fx0 >= fx1:
        return None
    return (
        slice(fy0, fy1),
        slice(fx0, fx1),
        slice(fy0 - top, fy1 - top),
        slice(fx0 - left, fx1 - left),
    )


def apply_bipo(
    image: NDArray[np.uint8],
    part_scores: NDArray[np.float32] | None,
    target_kps: NDArray[np.floating],
    negative_kps: NDArray[np.floating],
    occluder: Occluder,
    rng: np.random.Generator,
    person_mask: NDArray[np.uint8] | None = None,
) -> BipoResult:
    """Paste ``occluder`` over a training sample and update its labels consistently.

    The occluder's centre is moved to (cx, cy), cx ~ U[0, W), cy ~ U[0.55 H, 0.75 H), i.e. its box
    is shifted by (cx − W/2, cy − H/2) and clipped to the frame. Then:

    * image = alpha · occluder + (1 − alpha) · image;
    * part scores ×= (1 − alpha);
    * a target or negative keypoint gets c = 0 where alpha > max(alpha) / 10 at its rounded
      position;
    * the occluder's skeleton, shifted the same way, is appended to the negatives; its points
      outside the frame get c = 0, its invisible points stay (0, 0, 0);
    * the person mask, if given, shows "other people" where alpha > 0.5 (the pasted person is in
      front of everyone).

    Parameters
    ----------
    image : ndarray, shape [H, W, 3], uint8
        Already at the occluder's frame size.
    part_scores : ndarray, shape [K, H, W], float32, or None
    target_kps : ndarray, shape [17, 3]
        Frame pixels.
    negative_kps : ndarray, shape [M, 17, 3]
    occluder : Occluder
    rng : numpy.random.Generator
    person_mask : ndarray, shape [H, W], uint8, or None
        0 background, 1 target, 2 other people (see :mod:`kpr.masks`).

    Returns
    -------
    BipoResult
    """
    hw = image.shape[:2]
    if occluder.frame_hw != hw:
        raise ConfigError(
            f"occluder cut at {occluder.frame_hw} cannot be pasted on an image of size {hw}"
        )
    h, w = hw
    cx = int(rng.integers(0, w))
    cy = int(rng.integers(int(PLACEMENT_ROWS[0] * h), int(PLACEMENT_ROWS[1] * h)))
    dx, dy = cx - w // 2, cy - h // 2

    out_image = image.copy()
    out_scores = None if part_scores is None else part_scores.copy()
    alpha = np.zeros(hw, np.float32)
    window = _paste_window(occluder, dy, dx, hw)
    if window is not None:
        fy, fx, oy, ox = window
        a = occluder.alpha[oy, ox]
        alpha[fy, fx] = a
        blended = a[..., None] * occluder.rgb[oy, ox] + (1.0 - a[..., None]) * image[fy, fx]
        out_image[fy, fx] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
        if out_scores is not None:
            out_scores[:, fy, fx] *= 1.0 - a

    level = float(occluder.alpha.max()) / 10.0
    target = occluded_keypoints_dropped(np.array(target_kps, np.float64), alpha, level)
    negatives = occluded_keypoints_dropped(
        np.array(negative_kps, np.float64).reshape(-1, NUM_KEYPOINTS, 3), alpha, level
    )
    added = occluder.keypoints.copy()
    visible = added[:, 2] > 0
    added[visible, 0] += dx
    added[visible, 1] += dy
    added[visible & ~keypoints_in_frame(added, hw), 2] = 0.0
    out_mask = None
    if person_mask is not None:
        out_mask = np.where(alpha > 0.5, OTHERS, person_mask).astype(np.uint8)
    return BipoResult(
        image=out_image,
        part_scores=out_scores,
        target=target,
        negatives=np.concatenate([negatives, added[None]], axis=0),
        alpha=alpha,
        occluder_pid=occluder.pid,
        person_mask=out_mask,
    )


def occluded_keypoints_dropped(
    kps: NDArray[np.float64], alpha: NDArray[np.float32], level: float
) -> NDArray[np.float64]:
    """Set c = 0 on the in-frame keypoints of ``kps`` [..., 17, 3] where ``alpha`` > ``level``.

    Modifies and returns ``kps``.
    """
    inside = keypoints_in_frame(kps, alpha.shape)
    rows, cols = _rounded_index(kps, alpha.shape)
    kps[inside & (alpha[rows, cols] > level), 2] = 0.0
    return kps
