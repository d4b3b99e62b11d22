"""Train and test transforms working jointly on image, part scores and keypoints.

Train (the official recipe): Resize to H×W (bilinear) → BIPO (probability ``bipo_p``) →
PadIfNeeded(+``pad`` px per side, zeros) + RandomCrop H×W → Normalize → CoarseDropout (one hole
of height in [0.15 H, 0.65 H] and width in [0.15 W, 0.65 W], probability 0.5). No flip, no
colour jitter. Test-time crops are prepared by :class:`kpr.predictor.CropTransform`.

Keypoints travel through albumentations as rows (x, y, c, skeleton, joint): the extra columns pass
through unchanged, and albumentations never removes a row (``remove_invisible=False``). This module
sets c = 0 itself on points that leave the frame or fall in the dropout hole. Prompts are built
afterwards, from the returned keypoints, at the final resolution. Masks of mask prompts
(:class:`~kpr.masks.CropMasks`) are resized nearest-neighbour, updated by BIPO and go through the
same albumentations calls as an albumentations ``mask`` (the dropout hole shows no one).

Deliberate difference from the official code: the dropout hole of the *normalised* image is filled
with 0, i.e. the mean colour (officially it gets the raw mean values, e.g. 0.485, in normalised
space). Part scores are filled with 0 in the hole and in the padding.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

# albumentations otherwise queries PyPI for a newer version on import.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import albumentations as A  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402
from numpy.typing import NDArray  # noqa: E402

from kpr.data.bipo import Occluder, apply_bipo  # noqa: E402
from kpr.errors import ConfigError  # noqa: E402
from kpr.imaging import resize_rgb  # noqa: E402
from kpr.keypoints import NUM_KEYPOINTS, keypoints_in_frame, rescale_keypoints  # noqa: E402
from kpr.masks import CropMasks  # noqa: E402

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

OccluderPicker = Callable[[np.random.Generator], Occluder | None]
"""Returns the occluder to paste (or None to skip), drawing any randomness from the generator."""


@dataclass(frozen=True)
class AugmentationConfig:
    """The official KPR training augmentations (defaults: the Occluded-PoseTrack ImageNet config).

    Attributes
    ----------
    image_size : (int, int)
        Model input (H, W).
    pad : int
        Zero padding added on every side before the random crop back to H×W (0 disables both).
    dropout_p : float
        Probability of CoarseDropout.
    dropout_holes : int
        Number of holes.
    dropout_height, dropout_width : (float, float)
        Hole height / width range as fractions of H / W (truncated to whole pixels).
    bipo_p : float
        Probability that a sample gets BIPO occluders.
    bipo_max_count : int
        When BIPO fires, the number of occluders is drawn from 1 .. bipo_max_count.
    mean, std : (float, float, float)
        Normalisation of x / 255 (ImageNet; SOLIDER configs use 0.5 / 0.5).
    """

    image_size: tuple[int, int] = (256, 128)
    pad: int = 10
    dropout_p: float = 0.5
    dropout_holes: int = 1
    dropout_height: tuple[float, float] = (0.15, 0.65)
    dropout_width: tuple[float, float] = (0.15, 0.65)
    bipo_p: float = 0.2
    bipo_max_count: int = 1
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __post_init__(self) -> None:
        where = "AugmentationConfig"
        if len(self.image_size) != 2 or min(self.image_size) < 1:
            raise ConfigError(f"{where}.image_size must be 2 positive ints, got {self.image_size}")
        if self.pad < 0 or self.dropout_holes < 0 or self.bipo_max_count < 1:
            raise ConfigError(f"{where}: pad and dropout_holes must be >= 0, bipo_max_count >= 1")
        for name in ("dropout_p", "bipo_p"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"{where}.{name} must be in [0, 1], got {value}")
        for name in ("dropout_height", "dropout_width"):
            lo, hi = getattr(self, name)
            if not 0.0 <= lo <= hi <= 1.0:
                raise ConfigError(f"{where}.{name} needs 0 <= min <= max <= 1, got {(lo, hi)}")
        if min(self.std) <= 0:
            raise ConfigError(f"AugmentationConfig.std must be positive, got {self.std}")

    def dropout_pixels(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """Hole (height, width) ranges in pixels, at least 1."""
        h, w = self.image_size
        rows = tuple(max(1, int(f * h)) for f in self.dropout_height)
        cols = tuple(max(1, int(f * w)) for f in self.dropout_width)
        return rows, cols  # type: ignore[return-value]


@dataclass(frozen=True, eq=False)
class Augmented:
    """A sample ready for the model, at the final resolution.

    Attributes
    ----------
    image : ndarray, shape [3, H, W], float32
        Normalised.
    part_scores : ndarray, shape [K, H, W], float32, or None
    target : ndarray, shape [17, 3], float64
        Keypoints in output pixels; c = 0 for points out of frame, occluded by BIPO or dropped out.
    negatives : ndarray, shape [M, 17, 3], float64
        Including one skeleton per BIPO occluder, appended last.
    occluder_pids : tuple of int
        Identities pasted by BIPO.
    holes : tuple of (int, int, int, int)
        The dropout holes (x1, y1, x2, y2), end-exclusive; empty when dropout did not fire.
    masks : CropMasks or None
        The prompt masks at [H, W] (BIPO occluders are other people), when some were given.
    """

    image: NDArray[np.float32]
    part_scores: NDArray[np.float32] | None
    target: NDArray[np.float64]
    negatives: NDArray[np.float64]
    occluder_pids: tuple[int, ...] = ()
    holes: tuple[tuple[int, int, int, int], ...] = ()
    masks: CropMasks | None = None


def _resized(
    image: NDArray[np.uint8], target: NDArray, negatives: NDArray, hw: tuple[int, int]
) -> tuple[NDArray[np.uint8], NDArray[np.float64], NDArray[np.float64]]:
    """Resize the image to ``hw`` (bilinear) and scale the keypoints; points that had c = 0 or lay
    outside the original image become (0, 0, 0), as in the official reader."""
    orig_hw = image.shape[:2]
    kps = np.concatenate(
        [np.reshape(target, (1, NUM_KEYPOINTS, 3)), np.reshape(negatives, (-1, NUM_KEYPOINTS, 3))]
    ).astype(np.float64)
    kps[(kps[..., 2] <= 0) | ~keypoints_in_frame(kps, orig_hw)] = 0.0
    kps = rescale_keypoints(kps, orig_hw, hw)
    return resize_rgb(image, hw), kps[0], kps[1:]


class TrainTransform:
    """The official training augmentations, BIPO included (see the module docstring)."""

    def __init__(self, config: AugmentationConfig) -> None:
        self.config = config
        h, w = config.image_size
        rows, cols = config.dropout_pixels()
        geometric: list[A.BasicTransform] = []
        if config.pad > 0:
            geometric = [
                A.PadIfNeeded(
                    min_height=h + 2 * config.pad,
                    min_width=w + 2 * config.pad,
                    border_mode=cv2.BORDER_CONSTANT,
                    fill=0,
                    fill_mask=0,
                ),
                A.RandomCrop(height=h, width=w),
            ]
        self._compose = A.Compose(
            [
                *geometric,
                A.Normalize(mean=config.mean, std=config.std, max_pixel_value=255.0),
                A.CoarseDropout(
                    num_holes_range=(config.dropout_holes, config.dropout_holes),
                    hole_height_range=rows,
                    hole_width_range=cols,
                    fill=0.0,
                    fill_mask=0.0,
                    p=config.dropout_p,
                ),
            ],
            keypoint_params=A.KeypointParams(format="xy", remove_invisible=False),
            save_applied_params=True,
        )

    def __call__(
        self,
        image: NDArray[np.uint8],
        part_scores: NDArray[np.float32] | None,
        target: NDArray[np.floating],
        negatives: NDArray[np.floating],
        rng: np.random.Generator,
        pick_occluder: OccluderPicker | None = None,
        masks: CropMasks | None = None,
    ) -> Augmented:
        """Augment one training sample.

        Parameters
        ----------
        image : ndarray, shape [H0, W0, 3], uint8 RGB
        part_scores : ndarray, shape [K, H, W], float32, or None
            Already at the output size.
        target : ndarray, shape [17, 3]
            Original-image pixels.
        negatives : ndarray, shape [M, 17, 3]
        rng : numpy.random.Generator
            Source of every random choice (BIPO and albumentations), for reproducibility.
        pick_occluder : callable, optional
            Chooses BIPO occluders (e.g. from another identity of the batch); None disables BIPO.
        masks : CropMasks, optional
            Prompt masks at any size (the image's, usually).

        Returns
        -------
        Augmented
        """
        cfg = self.config
        hw = cfg.image_size
        img, tgt, negs = _resized(image, target, negatives, hw)
        scores = part_scores
        masks = None if masks is None else masks.resized(hw)
        occluder_pids: list[int] = []
        if pick_occluder is not None and rng.random() < cfg.bipo_p:
            for _ in range(int(rng.integers(1, cfg.bipo_max_count + 1))):
                occluder = pick_occluder(rng)
                if occluder is None:
                    break
                person = None if masks is None else masks.person
                res = apply_bipo(img, scores, tgt, negs, occluder, rng, person)
                img, scores, tgt, negs = res.image, res.part_scores, res.target, res.negatives
                if masks is not None and res.person_mask is not None:
                    masks = CropMasks(res.person_mask, masks.parts, masks.table, masks.source)
                occluder_pids.append(res.occluder_pid)

        skeletons = np.concatenate([tgt[None], negs])
        rows = _keypoint_rows(skeletons)
        data: dict[str, NDArray] = {"image": img, "keypoints": rows}
        if scores is not None:
            # A [K, H, W] stack of masks is processed in one go, the fastest layout.
            data["masks"] = np.ascontiguousarray(scores, dtype=np.float32)
        if masks is not None:
            layers = [masks.person] if masks.parts is None else [masks.person, masks.parts]
            data["mask"] = np.stack(layers, axis=-1)
        self._compose.set_random_seed(int(rng.integers(2**31)))
        out = self._compose(**data)

        moved = _skeletons_from_rows(out["keypoints"], rows, skeletons.shape[0])
        holes = _dropout_holes(out["applied_transforms"])
        lost = ~keypoints_in_frame(moved, hw)
        x, y = moved[..., 0], moved[..., 1]
        for x1, y1, x2, y2 in holes:
            lost |= (x >= x1) & (x < x2) & (y >= y1) & (y < y2)
        moved[lost, 2] = 0.0
        out_scores = None
        if scores is not None:
            out_scores = np.ascontiguousarray(out["masks"], dtype=np.float32)
        out_masks = None
        if masks is not None:
            moved_masks = np.asarray(out["mask"], np.uint8).reshape(*hw, -1)
            parts = None if masks.parts is None else np.ascontiguousarray(moved_masks[..., 1])
            person = np.ascontiguousarray(moved_masks[..., 0])
            out_masks = CropMasks(person, parts, masks.table, masks.source)
        return Augmented(
            image=np.ascontiguousarray(out["image"].transpose(2, 0, 1)),
            part_scores=out_scores,
            target=moved[0],
            negatives=moved[1:],
            occluder_pids=tuple(occluder_pids),
            holes=holes,
            masks=out_masks,
        )


def _keypoint_rows(skeletons: NDArray[np.float64]) -> NDArray[np.float64]:
    """[S, 17, 3] → [S·17, 5] rows (x, y, c, skeleton, joint)."""
    s = skeletons.shape[0]
    ids = np.stack(np.meshgrid(np.arange(s), np.arange(NUM_KEYPOINTS), indexing="ij"), -1)
    return np.concatenate([skeletons.reshape(-1, 3), ids.reshape(-1, 2)], axis=1)


def _skeletons_from_rows(
    rows: NDArray, sent: NDArray[np.float64], num_skeletons: int
) -> NDArray[np.float64]:
    """Put augmented rows back into [S, 17, 3] by their (skeleton, joint) columns."""
    out = np.zeros((num_skeletons, NUM_KEYPOINTS, 3))
    back = np.asarray(rows, np.float64).reshape(-1, sent.shape[1])
    if back.size:
        idx = back[:, 3:5].astype(np.intp)
        out[idx[:, 0], idx[:, 1]] = back[:, :3]
    return out


def _dropout_holes(applied: list[tuple[str, dict]]) -> tuple[tuple[int, int, int, int], ...]:
    """The (x1, y1, x2, y2) holes CoarseDropout cut, from albumentations' applied parameters."""
    for name, params in applied:
        if name == "CoarseDropout":
            holes = np.asarray(params["holes"], dtype=np.int64).reshape(-1, 4)
            return tuple((int(a), int(b), int(c), int(d)) for a, b, c, d in holes)
    return ()


def build_train_transform(config: AugmentationConfig) -> TrainTransform:
    """The official training augmentation pipeline for ``config``."""
    return TrainTransform(config)
