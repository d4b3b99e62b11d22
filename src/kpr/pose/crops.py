"""A frame and its people → each person's crop and prompt (KPRTrack's rule, KPR §4.5).

"For each detected person, it extracts part-based ReID features utilizing their keypoints as
positive prompts and keypoints from other individuals within the detected person bbox as negative
prompts." The tracker, the predictor and the web page all build prompts with ``person_crops``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from kpr.imaging import ImageLike, to_rgb_array
from kpr.keypoints.coco import NUM_KEYPOINTS
from kpr.keypoints.io import Skeletons
from kpr.pose.types import Person


@dataclass(frozen=True, eq=False)
class PersonCrop:
    """One person's crop of a frame, with its prompt in the crop's pixels.

    Attributes
    ----------
    image : ndarray, shape [h, w, 3], uint8
        RGB pixels of ``box`` (a view into the frame).
    box : (x0, y0, x1, y1) of int
        The crop in frame pixels: the person's box rounded outwards and clipped to the frame.
    target : ndarray, shape [17, 3], float64
        The person's own keypoints; those outside the crop are [0, 0, 0].
    negatives : ndarray, shape [M, 17, 3], float64
        The other people with keypoints inside the crop (only those keypoints; the rest zeroed),
        in ``people`` order.
    """

    image: NDArray[np.uint8]
    box: tuple[int, int, int, int]
    target: NDArray[np.float64]
    negatives: NDArray[np.float64]

    @property
    def skeletons(self) -> Skeletons:
        return Skeletons(self.target, self.negatives)


def crop_box(box: Sequence[float], frame_hw: tuple[int, int]) -> tuple[int, int, int, int]:
    """``box`` rounded outwards to integers and clipped to the frame; at least 1×1 px."""
    h, w = frame_hw
    x0 = min(max(math.floor(box[0]), 0), w - 1)
    y0 = min(max(math.floor(box[1]), 0), h - 1)
    x1 = max(min(math.ceil(box[2]), w), x0 + 1)
    y1 = max(min(math.ceil(box[3]), h), y0 + 1)
    return x0, y0, x1, y1


def _into_box(
    keypoints: NDArray[np.float64], box: tuple[int, int, int, int]
) -> NDArray[np.float64]:
    """[..., 17, 3] frame keypoints → crop pixels; points with c == 0 or outside become zeros."""
    x0, y0, x1, y1 = box
    moved = keypoints - np.array([x0, y0, 0.0])
    inside = (
        (keypoints[..., 2] > 0)
        & (keypoints[..., 0] >= x0) & (keypoints[..., 0] < x1)
        & (keypoints[..., 1] >= y0) & (keypoints[..., 1] < y1)
    )  # fmt: skip
    return np.where(inside[..., None], moved, 0.0)


def person_crops(frame: ImageLike, people: Sequence[Person]) -> list[PersonCrop]:
    """Each person's crop and prompt, in ``people`` order.

    Parameters
    ----------
    frame : image
        Anything ``kpr.imaging.to_rgb_array`` takes; people are in its pixels.
    people : sequence of Person

    Returns
    -------
    list of PersonCrop
        ``target`` = the person's keypoints moved into its crop; ``negatives`` = every other
        person's keypoints that fall inside the crop, moved likewise (people with none dropped).
    """
    rgb = to_rgb_array(frame, "frame")
    all_kps = np.stack([p.keypoints for p in people]) if people else np.zeros((0, NUM_KEYPOINTS, 3))
    crops = []
    for i, person in enumerate(people):
        box = crop_box(person.box, rgb.shape[:2])
        others = _into_box(np.delete(all_kps, i, axis=0), box)
        others = others[(others[..., 2] > 0).any(axis=1)]
        x0, y0, x1, y1 = box
        crops.append(PersonCrop(rgb[y0:y1, x0:x1], box, _into_box(all_kps[i], box), others))
    return crops
