"""The Market-1501 layout, shared by ``market1501`` and ``occluded_duke``.

::

    <dataset_dir>/
      bounding_box_train/<pid>_c<cam>….jpg      train
      query/<pid>_c<cam>….jpg                   query
      bounding_box_test/<pid>_c<cam>….jpg       gallery (pid 0: distractors, pid -1: junk)
      external_annotation/<keypoints_dir>/<split folder>/<image name>_keypoints.json
      masks/<masks_dir>/<split folder>/<image stem><masks_suffix>
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from kpr.data.datasets._common import (
    JUNK_PID,
    BadSamplePolicy,
    BadSamples,
    Candidate,
    Companion,
    DatasetError,
    build_samples,
    finish,
    optional_root,
    parse_image_name,
    relabel_train,
    require_dir,
    resolve_dataset_dir,
)
from kpr.data.samples import ReIDDataset, ReIDSample, Split

SPLIT_DIRS: dict[Split, str] = {
    "train": "bounding_box_train",
    "query": "query",
    "gallery": "bounding_box_test",
}
DEFAULT_KEYPOINTS_DIR = "pifpaf_keypoints_pifpaf_maskrcnn_filtering"
DEFAULT_MASKS_DIR = "pifpaf_maskrcnn_filtering"
KEYPOINTS_SUFFIX = "_keypoints.json"

_MARKET_NAME = re.compile(r"(-?\d+)_c(\d)")


def parse_market_name(name: str) -> tuple[int, int]:
    """Raw pid and 0-based camera of a Market/Duke file name.

    ``"0002_c1s1_000451_03.jpg"`` → ``(2, 0)``; ``"-1_c3s1_…"`` → ``(-1, 2)``.

    Raises
    ------
    DatasetError
        If the name does not start with ``<pid>_c<camera digit>``.
    """
    match = _MARKET_NAME.match(name)
    if match is None:
        raise DatasetError(f"{name}: file name does not start with <pid>_c<camera>")
    return int(match.group(1)), int(match.group(2)) - 1


def keypoints_file_name(image: Path) -> str:
    """External-annotation keypoint file name: ``0002_c1s1_000451_03.jpg_keypoints.json``."""
    return image.name + KEYPOINTS_SUFFIX


@dataclass(frozen=True)
class ExternalAnnotations:
    """The official annotation layout's keypoint and parsing folders, one subfolder per split:
    ``external_annotation/<keypoints_dir>/<split folder>/<image name>_keypoints.json`` and
    ``masks/<masks_dir>/<split folder>/<image stem><masks_suffix>``. A root is None when it was
    not asked for or is absent (with a warning)."""

    keypoints_root: Path | None
    masks_root: Path | None
    masks_suffix: str
    dataset: str

    @classmethod
    def find(
        cls,
        data_dir: Path,
        keypoints_dir: str | None,
        masks_dir: str | None,
        masks_suffix: str,
        dataset: str,
    ) -> ExternalAnnotations:
        kp = data_dir / "external_annotation" / keypoints_dir if keypoints_dir else None
        masks = data_dir / "masks" / masks_dir if masks_dir else None
        return cls(
            optional_root(kp, "keypoints", dataset),
            optional_root(masks, "parsing labels", dataset),
            masks_suffix,
            dataset,
        )

    def companions(self, folder: str, split: Split) -> tuple[Companion | None, Companion | None]:
        """(keypoints, parsing) side files of the split in ``folder``; a requested root without
        that subfolder is a :class:`DatasetError`."""
        keypoints = parsing = None
        if self.keypoints_root is not None:
            kp_dir = require_dir(self.keypoints_root / folder, f"{split} keypoints", self.dataset)
            keypoints = Companion("keypoints", kp_dir, keypoints_file_name, KEYPOINTS_SUFFIX)
        if self.masks_root is not None:
            what = f"{split} parsing labels"
            mask_dir = require_dir(self.masks_root / folder, what, self.dataset)
            suffix = self.masks_suffix
            parsing = Companion("parsing", mask_dir, lambda p: p.stem + suffix, suffix)
        return keypoints, parsing

    def describe(self) -> str:
        """The folders used, for the dataset's summary notes."""
        kp, masks = self.keypoints_root or "none", self.masks_root or "none"
        return f"keypoints {kp}; parsing labels {masks}"


@dataclass(frozen=True)
class MarketStyleLayout:
    """What differs between the datasets that use the Market-1501 layout."""

    name: str
    dirname: str
    num_cameras: int


def build_market_style(
    layout: MarketStyleLayout,
    root: str | os.PathLike[str],
    *,
    keypoints_dir: str | None,
    masks_dir: str | None,
    masks_suffix: str,
    drop_train_without_keypoints: bool,
    on_bad_sample: BadSamplePolicy,
    verify: bool,
    verbose: bool,
) -> ReIDDataset:
    """Read a Market-style dataset; see :func:`kpr.data.datasets.market1501.market1501`."""
    bad = BadSamples(layout.name, on_bad_sample)
    data_dir = resolve_dataset_dir(root, layout.dirname, tuple(SPLIT_DIRS.values()), layout.name)
    annotations = ExternalAnnotations.find(
        data_dir, keypoints_dir, masks_dir, masks_suffix, layout.name
    )
    splits: dict[Split, list[ReIDSample]] = {}
    junk = 0
    for split, folder in SPLIT_DIRS.items():
        image_dir = require_dir(data_dir / folder, f"{split} split", layout.name)
        images = sorted(image_dir.glob("*.jpg"))
        candidates: list[Candidate] = []
        for image in images:
            parsed = bad.guard(_parse_image, image, layout.num_cameras)
            if parsed is None:
                continue
            pid, camid = parsed
            if pid == JUNK_PID:
                junk += 1
                continue
            candidates.append(Candidate(image, pid, camid, split))
        keypoints, parsing = annotations.companions(folder, split)
        splits[split] = build_samples(
            candidates,
            all_images=images,
            keypoints=keypoints,
            parsing=parsing,
            parsing_format="pifpaf36",
            bad=bad,
            verify=verify,
            require_skeleton=drop_train_without_keypoints and split == "train",
        )
    dataset = ReIDDataset(
        name=layout.name,
        train=relabel_train(splits["train"]),
        query=splits["query"],
        gallery=splits["gallery"],
        num_cameras=layout.num_cameras,
    )
    notes = [
        f"dataset directory {data_dir}",
        annotations.describe(),
        f"{junk} junk images (pid -1) ignored",
    ]
    return finish(dataset, bad, verbose, notes)


def _parse_image(image: Path, num_cameras: int) -> tuple[int, int]:
    pid, camid = parse_image_name(image, parse_market_name)
    if not 0 <= camid < num_cameras:
        raise DatasetError(f"{image}: camera c{camid + 1} is outside c1..c{num_cameras}")
    return pid, camid
