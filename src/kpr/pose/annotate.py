"""Crops → official keypoint files: the estimator, then the target rule, then an atomic write.

Each file is the official layout (``kpr.keypoints.io``): a list of ``{"keypoints": [[x, y, c] ×17],
"is_target": bool}``, the target first; a crop where nobody is found gets ``[]``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from kpr.errors import KPRError
from kpr.imaging import ImageLike, read_rgb, to_rgb_array
from kpr.io_utils import write_text_atomic
from kpr.keypoints.coco import NUM_KEYPOINTS
from kpr.keypoints.io import Skeletons, write_keypoints_file
from kpr.pose.checks import run_estimator
from kpr.pose.errors import PoseError
from kpr.pose.target import AMBIGUITY_MARGIN, TargetChoice, choose_target
from kpr.pose.types import PoseEstimator

Naming = Literal["stem", "official"]
OnError = Literal["stop", "skip"]


@dataclass(frozen=True, eq=False)
class CropAnnotation:
    """The people found in one crop.

    Attributes
    ----------
    skeletons : ndarray, shape [N, 17, 3], float64
        Target first, then the others in the estimator's order; N = 0 when nobody was found.
    choice : TargetChoice
        The target rule's verdict, indexed in the estimator's order.
    """

    skeletons: NDArray[np.float64]
    choice: TargetChoice

    @property
    def num_people(self) -> int:
        return int(self.skeletons.shape[0])

    def as_skeletons(self) -> Skeletons:
        """The ``Skeletons`` the predictor takes (all zeros when nobody was found)."""
        if not self.num_people:
            return Skeletons.empty()
        return Skeletons(self.skeletons[0], self.skeletons[1:])

    def write(self, path: str | os.PathLike[str]) -> None:
        """Write the official keypoint JSON atomically (``[]`` when nobody was found)."""
        if self.num_people:
            write_keypoints_file(path, self.skeletons[0], self.skeletons[1:])
        else:
            write_text_atomic(path, "[]\n")


def annotate_crop(
    image: ImageLike,
    estimator: PoseEstimator,
    name: str = "image",
    margin: float = AMBIGUITY_MARGIN,
) -> CropAnnotation:
    """Run ``estimator`` on a crop and order its people by the target rule (``choose_target``)."""
    rgb = to_rgb_array(image, name)
    people = run_estimator(estimator, rgb, name)
    found = np.stack([p.keypoints for p in people]) if people else np.zeros((0, NUM_KEYPOINTS, 3))
    choice = choose_target(found, rgb.shape[:2], margin)
    if choice.index is not None:
        found = np.concatenate(
            [found[choice.index : choice.index + 1], np.delete(found, choice.index, 0)]
        )
    return CropAnnotation(found, choice)


def auto_skeletons(image: ImageLike, estimator: PoseEstimator, name: str = "image") -> Skeletons:
    """The prompt of a crop without a keypoint file: the target rule's target and negatives."""
    return annotate_crop(image, estimator, name).as_skeletons()


def keypoint_file_name(image: str | os.PathLike[str], naming: Naming = "stem") -> str:
    """``<stem>.json`` (kpr-folder datasets, ``kpr embed --keypoints``) or the official
    ``<name>_keypoints.json`` (Market-1501 / Occluded-Duke ``external_annotation`` trees)."""
    path = Path(image)
    return f"{path.stem}.json" if naming == "stem" else f"{path.name}_keypoints.json"


@dataclass(frozen=True)
class CropRecord:
    """One crop of a run: its keypoint file, people count and whether the target was ambiguous
    (both None when the file already existed and was not redone)."""

    image: Path
    keypoint_file: Path
    num_people: int | None
    ambiguous: bool | None


@dataclass(frozen=True)
class AnnotationSummary:
    """What ``annotate_crops`` did: crops annotated now, crops already done, crops that failed."""

    annotated: tuple[CropRecord, ...]
    already_done: tuple[CropRecord, ...]
    failed: tuple[tuple[Path, str], ...]

    def people_histogram(self) -> dict[str, int]:
        """Crops annotated now with 0, 1 and 2 or more people."""
        counts = {"0": 0, "1": 0, "2+": 0}
        for record in self.annotated:
            n = record.num_people or 0
            counts[str(n) if n < 2 else "2+"] += 1
        return counts

    def lines(self) -> list[str]:
        """The closing report, one fact a line."""
        hist = self.people_histogram()
        people = ", ".join(f"{k}: {v}" for k, v in hist.items())
        ambiguous = [r.image.name for r in self.annotated if r.ambiguous]
        names = ", ".join(ambiguous[:10]) + (", ..." if len(ambiguous) > 10 else "")
        out = [
            f"annotated {len(self.annotated)} crops; people per crop: {people}",
            f"ambiguous target choice: {len(ambiguous)}" + (f" ({names})" if ambiguous else ""),
            f"skipped (keypoint file already written): {len(self.already_done)}",
        ]
        if self.failed:
            out.append(f"failed (skipped): {len(self.failed)}")
            out += [f"  {message}" for _, message in self.failed]
        return out


def annotate_crops(
    images: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    estimator: PoseEstimator,
    naming: Naming = "stem",
    overwrite: bool = False,
    on_error: OnError = "stop",
    margin: float = AMBIGUITY_MARGIN,
    progress: bool = False,
) -> AnnotationSummary:
    """Write one keypoint file per crop into ``out_dir``; resumable.

    A crop whose file exists is skipped unless ``overwrite``. Every file is written atomically,
    so an interrupted run leaves only complete files and the next run carries on.

    Raises
    ------
    PoseError
        Two crops would write the same file, or ``out_dir`` is not a directory.
    KPRError
        With ``on_error="stop"``, the first unreadable image, too-small crop or malformed backend
        output (the message names the file); with ``"skip"`` these are listed in ``failed``.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise PoseError(f"{out}: exists and is not a directory")
    paths = [Path(p) for p in images]
    targets = [out / keypoint_file_name(p, naming) for p in paths]
    seen: dict[Path, Path] = {}
    for image, target in zip(paths, targets):
        if target in seen:
            raise PoseError(
                f"{image} and {seen[target]} would both write {target}; use --naming official "
                "or separate runs"
            )
        seen[target] = image
    todo = [(p, t) for p, t in zip(paths, targets) if overwrite or not t.is_file()]
    already = tuple(
        CropRecord(p, t, None, None)
        for p, t in zip(paths, targets)
        if not overwrite and t.is_file()
    )
    out.mkdir(parents=True, exist_ok=True)
    steps = todo
    if progress:
        from tqdm import tqdm

        steps = tqdm(todo, desc="annotate", unit="crop", disable=None)
    annotated, failed = [], []
    for image, target in steps:
        try:
            annotation = annotate_crop(read_rgb(image), estimator, str(image), margin)
        except KPRError as exc:
            if on_error == "stop":
                raise
            failed.append((image, str(exc)))
            continue
        annotation.write(target)
        annotated.append(
            CropRecord(image, target, annotation.num_people, annotation.choice.ambiguous)
        )
    return AnnotationSummary(tuple(annotated), already, tuple(failed))
