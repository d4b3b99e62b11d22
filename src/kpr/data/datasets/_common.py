"""Shared by the dataset adapters: errors, the bad-sample policy, side-file pairing and checks.

An adapter lists its images, turns each into a :class:`Candidate` (path, pid, camid, split), then
:func:`build_samples` pairs every candidate with its keypoint and parsing files, checks them, and
produces :class:`~kpr.data.samples.ReIDSample` records. Problems with a single sample go through
:class:`BadSamples`, which either raises at once or skips the sample and counts it.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np

from kpr.data.samples import ParsingFormat, ReIDDataset, ReIDSample, Split
from kpr.errors import BadSampleWarning, ConfigError, DatasetError, KPRError
from kpr.imaging import read_rgb
from kpr.keypoints import PIFPAF_CHANNEL_NAMES, Skeletons, read_keypoints_file

logger = logging.getLogger("kpr.data.datasets")

BadSamplePolicy = Literal["raise", "skip"]
T = TypeVar("T")

NUM_PIFPAF_CHANNELS = len(PIFPAF_CHANNEL_NAMES)
JUNK_PID = -1

# Occluded-ReID and Partial-ReID: occluded crops are the queries, whole-body crops the gallery,
# each split its own "camera" so that the Market protocol filters nothing.
OCCLUDED_TEST_SPLITS: dict[Split, tuple[str, int]] = {
    "query": ("occluded_body_images", 0),
    "gallery": ("whole_body_images", 1),
}


class BadSamples:
    """The ``on_bad_sample`` policy: raise on the first bad sample, or skip it and count it.

    Parameters
    ----------
    dataset : str
        Dataset name, used in messages.
    policy : {"raise", "skip"}
    """

    def __init__(self, dataset: str, policy: BadSamplePolicy) -> None:
        if policy not in ("raise", "skip"):
            raise ConfigError(f"on_bad_sample must be 'raise' or 'skip', got {policy!r}")
        self.dataset = dataset
        self.policy = policy
        self.problems: list[str] = []

    def report(self, message: str) -> None:
        """Raise a :class:`DatasetError` with ``message``, or record the problem when skipping."""
        if self.policy == "raise":
            raise DatasetError(f"{self.dataset}: {message}")
        self._skip(message)

    def guard(self, fn: Callable[..., T], *args: Any) -> T | None:
        """Call ``fn(*args)``. A :class:`KPRError` it raises propagates, or is recorded when
        skipping, and then ``None`` is returned."""
        try:
            return fn(*args)
        except KPRError as exc:
            if self.policy == "raise":
                raise
            self._skip(str(exc))
            return None

    def passes(self, check: Callable[..., object], *args: Any) -> bool:
        """Like :meth:`guard` for a check: ``False`` if it raised and the sample is skipped."""
        return self.guard(lambda: check(*args) or True) is not None

    def _skip(self, message: str) -> None:
        self.problems.append(message)
        logger.warning("%s: skipped bad sample: %s", self.dataset, message)

    def warn_summary(self) -> None:
        """Emit one :class:`BadSampleWarning` with the number of skipped samples, if any."""
        if self.problems:
            more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
            warnings.warn(
                f"{self.dataset}: skipped {len(self.problems)} bad sample(s): "
                f"{self.problems[0]}{more}",
                BadSampleWarning,
                stacklevel=4,
            )


def resolve_dataset_dir(
    root: str | os.PathLike[str], dirname: str, markers: Sequence[str], dataset: str
) -> Path:
    """The dataset directory: ``root/dirname`` if it holds the layout, else ``root`` itself.

    ``markers`` are entries (split folders) of which at least one identifies the layout.

    Raises
    ------
    DatasetError
        If ``root`` does not exist or neither candidate holds any marker.
    """
    base = Path(root).expanduser()
    if not base.is_dir():
        raise DatasetError(f"{dataset}: dataset root does not exist or is not a folder: {base}")
    nested = base / dirname
    for candidate, how in ((nested, f"{dirname}/ under the root"), (base, "the root itself")):
        if candidate.is_dir() and any((candidate / m).exists() for m in markers):
            logger.info("%s: dataset directory %s (%s)", dataset, candidate, how)
            return candidate
    raise DatasetError(
        f"{dataset}: no dataset found: neither {nested} nor {base} contains any of "
        f"{', '.join(markers)}"
    )


def require_dir(path: Path, what: str, dataset: str) -> Path:
    """Return ``path`` if it is a folder, else raise a :class:`DatasetError` naming it."""
    if not path.is_dir():
        raise DatasetError(f"{dataset}: missing {what} folder: {path}")
    return path


def optional_root(path: Path | None, what: str, dataset: str) -> Path | None:
    """``path`` if it is a folder; ``None`` (with a warning) if it was asked for but is absent."""
    if path is None:
        return None
    if not path.is_dir():
        warnings.warn(
            f"{dataset}: no {what} folder at {path}; the samples will have no {what}",
            stacklevel=3,
        )
        return None
    return path


def parse_prefix_pid(name: str) -> int:
    """The pid of an Occluded-ReID / Partial-ReID file: the integer before the first ``_``.

    ``"012_03.tif"`` → ``12``.
    """
    prefix = name.split("_", 1)[0]
    try:
        return int(prefix)
    except ValueError:
        raise DatasetError(f"{name}: file name does not start with <pid>_") from None


def parse_image_name(image: Path, parse: Callable[[str], T]) -> T:
    """``parse(image.name)``, re-raising its DatasetError (``"<name>: …"``) with the full path."""
    try:
        return parse(image.name)
    except DatasetError as exc:
        raise DatasetError(f"{image.parent}{os.sep}{exc}") from None


@dataclass(frozen=True)
class Candidate:
    """An image accepted by its adapter's naming rules, before its side files are checked."""

    image: Path
    pid: int
    camid: int
    split: Split
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Companion:
    """Where the per-image side files of one kind (keypoints, parsing labels) live.

    Attributes
    ----------
    kind : str
        ``"keypoints"`` or ``"parsing"``, for messages.
    directory : Path
        Folder holding the files.
    name_for : callable
        Image path → the side file's path relative to ``directory`` (POSIX separators).
    suffix : str
        Every side file's name ends with this; used to find files that pair with no image.
    recursive : bool
        Whether side files may sit in subfolders of ``directory``.
    """

    kind: str
    directory: Path
    name_for: Callable[[Path], str]
    suffix: str
    recursive: bool = False

    def present(self) -> set[str]:
        """Relative paths of the side files on disk."""
        entries = self.directory.rglob("*") if self.recursive else self.directory.iterdir()
        return {
            p.relative_to(self.directory).as_posix()
            for p in entries
            if p.name.endswith(self.suffix) and not p.name.startswith(".") and p.is_file()
        }


def pair_side_files(
    companion: Companion,
    candidates: Sequence[Candidate],
    all_images: Iterable[Path],
    bad: BadSamples,
) -> dict[Path, Path]:
    """Map each candidate image to its side file; report side files without an image and vice versa.

    ``all_images`` are every image file of the split, including junk and rejected names, so
    their side files do not count as orphans. A candidate without a side file is reported and
    left out of the result.
    """
    present = companion.present()
    expected = {companion.name_for(image) for image in all_images}
    for orphan in sorted(present - expected):
        bad.report(
            f"{companion.kind} file {companion.directory / orphan} does not pair with any image"
        )
    pairs: dict[Path, Path] = {}
    for cand in candidates:
        rel = companion.name_for(cand.image)
        if rel in present:
            pairs[cand.image] = companion.directory / rel
        else:
            bad.report(f"{cand.image}: missing {companion.kind} file {companion.directory / rel}")
    return pairs


def check_image(path: Path) -> tuple[int, int]:
    """Decode the image; return its (H, W). A missing or corrupt file raises ImageReadError."""
    return read_rgb(path).shape[:2]


def check_pifpaf_fields(path: Path) -> tuple[int, ...]:
    """Check that a ``.npy`` parsing file holds [36, h, w] PifPaf fields; return its shape."""
    try:
        fields = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot read parsing labels: {exc}") from exc
    shape = tuple(int(n) for n in fields.shape)
    kind = fields.dtype.kind
    del fields
    if len(shape) != 3 or shape[0] != NUM_PIFPAF_CHANNELS or kind not in "iuf":
        raise DatasetError(
            f"{path}: parsing labels have shape {list(shape)} ({kind}), expected "
            f"[{NUM_PIFPAF_CHANNELS}, h, w] numeric PifPaf fields"
        )
    return shape


def has_skeleton(skeletons: Skeletons) -> bool:
    """Whether a keypoint file holds anything but zeros (the official "no skeleton" test)."""
    return bool(np.any(skeletons.target != 0) or np.any(skeletons.negatives != 0))


def build_samples(
    candidates: Sequence[Candidate],
    *,
    all_images: Collection[Path],
    keypoints: Companion | None,
    parsing: Companion | None,
    parsing_format: ParsingFormat | None,
    bad: BadSamples,
    verify: bool,
    check_parsing: Callable[[Path, tuple[int, int] | None], object] | None = None,
    require_skeleton: bool = False,
    prompt_masks: Companion | None = None,
    check_masks: Callable[[Path, tuple[int, int] | None], object] | None = None,
) -> list[ReIDSample]:
    """Pair, check and convert the candidates of one split.

    Parameters
    ----------
    keypoints, parsing : Companion or None
        Where the side files live; ``None`` when the dataset has none of that kind.
    verify : bool
        Decode every image and parse every keypoint file (otherwise only existence is checked).
    check_parsing : callable, optional
        ``(parsing path, image (H, W) or None) → anything``, raising a KPRError on a bad file;
        default: the PifPaf [36, h, w] check.
    require_skeleton : bool
        Drop (not as bad samples) candidates whose keypoint file holds only zeros.
    prompt_masks : Companion or None
        Where the person masks (mask prompts) live.
    check_masks : callable, optional
        ``(mask path, image (H, W) or None) → anything``, raising a KPRError on a bad mask file.
    """
    kps = pair_side_files(keypoints, candidates, all_images, bad) if keypoints else {}
    masks = pair_side_files(parsing, candidates, all_images, bad) if parsing else {}
    person = pair_side_files(prompt_masks, candidates, all_images, bad) if prompt_masks else {}
    check = check_parsing or (lambda path, _hw: check_pifpaf_fields(path))
    samples: list[ReIDSample] = []
    without_skeleton = 0
    for cand in candidates:
        if (keypoints and cand.image not in kps) or (parsing and cand.image not in masks):
            continue
        if prompt_masks and cand.image not in person:
            continue
        hw: tuple[int, int] | None = None
        if verify:
            hw = bad.guard(check_image, cand.image)
            if hw is None:
                continue
        kp_file = kps.get(cand.image)
        if kp_file is not None and (verify or require_skeleton):
            skeletons = bad.guard(read_keypoints_file, kp_file)
            if skeletons is None:
                continue
            if require_skeleton and not has_skeleton(skeletons):
                without_skeleton += 1
                continue
        mask_file = masks.get(cand.image)
        if mask_file is not None and verify and not bad.passes(check, mask_file, hw):
            continue
        person_file = person.get(cand.image)
        if person_file is not None and verify and check_masks is not None:
            if not bad.passes(check_masks, person_file, hw):
                continue
        samples.append(
            ReIDSample(
                image=cand.image,
                pid=cand.pid,
                camid=cand.camid,
                split=cand.split,
                keypoints=kp_file,
                parsing=mask_file,
                parsing_format=parsing_format if mask_file is not None else None,
                masks=person_file,
                attributes=cand.attributes,
            )
        )
    if without_skeleton:
        logger.info("%s: dropped %d images without any keypoint", bad.dataset, without_skeleton)
    return samples


def relabel_train(samples: Sequence[ReIDSample]) -> list[ReIDSample]:
    """Relabel pids to 0..P-1 in increasing raw-pid order; the raw pid goes to ``attributes``."""
    mapping = {pid: i for i, pid in enumerate(sorted({s.pid for s in samples}))}
    return [
        replace(s, pid=mapping[s.pid], attributes={**s.attributes, "raw_pid": s.pid})
        for s in samples
    ]


def finish(
    dataset: ReIDDataset, bad: BadSamples, verbose: bool, notes: Sequence[str]
) -> ReIDDataset:
    """Warn about skipped samples and, if ``verbose``, print ``notes`` and the stats table."""
    bad.warn_summary()
    if verbose:
        for note in notes:
            print(f"{dataset.name}: {note}")
        print(dataset.stats_table())
    return dataset
