"""``folder`` and ``synthetic``: datasets in the generic ``kpr-folder/1`` layout.

The format is specified in ``docs/dataset_format.md``::

    <root>/
      dataset.json                    format, name, parsing_classes, optional filename_pattern
      annotations.csv                 image,split,pid,camid[,extra]  (or a file-name pattern)
      images/<split>/<name>.<ext>
      keypoints/<split>/<name>.json   official keypoint layout (optional folder)
      parsing/<split>/<name>.png      single-channel label maps (optional folder)
      masks/<split>/<name>.png        person masks: 0 background, 1 target, 2 other people
                                      (optional folder; the prompts of mask-prompt models)

Identities and cameras come from ``annotations.csv``, or, without it, from a regular expression
with named groups ``pid`` and ``camid`` searched in each image's file name.
"""

from __future__ import annotations

import csv
import functools
import json
import os
import re
from pathlib import Path, PurePosixPath
from typing import Any, Literal, cast

import numpy as np
from PIL import Image, UnidentifiedImageError

from kpr.data.datasets import register_dataset
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
)
from kpr.data.samples import ReIDDataset, ReIDSample, Split
from kpr.errors import ConfigError
from kpr.masks import read_person_mask

FOLDER_FORMAT = "kpr-folder/1"
SYNTHETIC_NAME = "synthetic"  # the ``dataset.json`` name of what ``kpr synth`` writes
SPLITS: tuple[Split, ...] = ("train", "query", "gallery")
# A test-only dataset has no train folder; query and gallery are always required.
REQUIRED_SPLITS: tuple[Split, ...] = ("query", "gallery")
REQUIRED_COLUMNS = ("image", "split", "pid", "camid")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
EvalProtocol = Literal["market", "no_filter"]


def read_metadata(data_dir: Path) -> dict[str, Any]:
    """Read and check ``dataset.json``.

    Raises
    ------
    DatasetError
        If the file is missing (an incomplete or foreign folder), unreadable, or not
        ``kpr-folder/1``.
    """
    path = data_dir / "dataset.json"
    if not path.is_file():
        raise DatasetError(f"{path}: missing; not a {FOLDER_FORMAT} dataset, or an incomplete one")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read dataset metadata: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("format") != FOLDER_FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise DatasetError(f"{path}: field 'format': expected {FOLDER_FORMAT!r}, got {found!r}")
    if not isinstance(meta.get("name"), str):
        raise DatasetError(f"{path}: field 'name': expected a string")
    classes = meta.get("parsing_classes")
    if classes is not None and not (
        isinstance(classes, list) and classes and all(isinstance(c, str) for c in classes)
    ):
        raise DatasetError(f"{path}: field 'parsing_classes': expected a list of strings")
    if not isinstance(meta.get("filename_pattern", ""), str):
        raise DatasetError(f"{path}: field 'filename_pattern': expected a string")
    base = meta.get("camid_base", 0)
    if not isinstance(base, int) or isinstance(base, bool):
        raise DatasetError(f"{path}: field 'camid_base': expected an integer, got {base!r}")
    return meta


def compile_filename_pattern(pattern: str) -> re.Pattern[str]:
    """Compile a file-name pattern; it must define the named groups ``pid`` and ``camid``.

    Raises
    ------
    ConfigError
        On an invalid regular expression or a missing group.
    """
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ConfigError(
            f"filename_pattern {pattern!r}: invalid regular expression: {exc}"
        ) from exc
    missing = {"pid", "camid"} - set(compiled.groupindex)
    if missing:
        raise ConfigError(
            f"filename_pattern {pattern!r}: missing named group(s) {sorted(missing)}, "
            "e.g. r'(?P<pid>-?\\d+)_c(?P<camid>\\d+)'"
        )
    return compiled


def parse_filename(name: str, pattern: re.Pattern[str], camid_base: int = 0) -> tuple[int, int]:
    """pid and 0-based camid of ``name`` by a compiled file-name pattern.

    ``parse_filename("0002_c3_17.png", re.compile(r"(?P<pid>-?\\d+)_c(?P<camid>\\d+)"), 1)``
    → ``(2, 2)``.

    Raises
    ------
    DatasetError
        If the pattern does not match, a group is not an integer, or the camid is negative.
    """
    match = pattern.search(name)
    if match is None:
        raise DatasetError(f"{name}: file name does not match {pattern.pattern!r}")
    try:
        pid, camid = int(match.group("pid")), int(match.group("camid")) - camid_base
    except (TypeError, ValueError):
        raise DatasetError(
            f"{name}: groups pid={match.group('pid')!r}, camid={match.group('camid')!r} "
            "are not integers"
        ) from None
    if camid < 0:
        raise DatasetError(f"{name}: camid {camid} is negative (camid_base {camid_base})")
    return pid, camid


def coerce_value(text: str) -> int | float | str:
    """A CSV cell as int, else float, else the string itself."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def list_images(image_dir: Path) -> list[Path]:
    """Every image file under ``image_dir`` (any depth), sorted."""
    return sorted(
        p
        for p in image_dir.rglob("*")
        if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and p.is_file()
    )


def check_label_map(path: Path, image_hw: tuple[int, int] | None, num_classes: int) -> None:
    """Check a parsing label map: one channel, the image's size, values below ``num_classes``."""
    try:
        with Image.open(path) as img:
            bands, size = len(img.getbands()), img.size
            labels = np.asarray(img) if img.mode in ("L", "P", "I", "I;16") else None
    except (OSError, UnidentifiedImageError) as exc:
        raise DatasetError(f"{path}: cannot read parsing label map: {exc}") from exc
    if bands != 1 or labels is None:
        raise DatasetError(f"{path}: parsing label map has {bands} channels, expected 1")
    if image_hw is not None and (size[1], size[0]) != image_hw:
        raise DatasetError(
            f"{path}: parsing label map is {size[1]}x{size[0]} (HxW), the image is "
            f"{image_hw[0]}x{image_hw[1]}"
        )
    if labels.size and int(labels.max()) >= num_classes:
        raise DatasetError(
            f"{path}: parsing label {int(labels.max())} is out of range for "
            f"{num_classes} parsing_classes"
        )


def check_person_mask(path: Path, image_hw: tuple[int, int] | None) -> None:
    """Check a person mask: a single-channel PNG of values 0, 1, 2, the image's size."""
    hw = read_person_mask(path).hw
    if image_hw is not None and hw != image_hw:
        raise DatasetError(
            f"{path}: person mask is {hw[0]}x{hw[1]} (HxW), the image is "
            f"{image_hw[0]}x{image_hw[1]}"
        )


@register_dataset("folder")
def folder(
    root: str | os.PathLike[str],
    *,
    filename_pattern: str | None = None,
    camid_base: int | None = None,
    eval_protocol: EvalProtocol = "market",
    num_cameras: int = 0,
    keypoints: bool = True,
    parsing: bool = True,
    masks: bool = True,
    on_bad_sample: BadSamplePolicy = "raise",
    verify: bool = True,
    verbose: bool = True,
) -> ReIDDataset:
    """A dataset in the generic ``kpr-folder/1`` layout (``docs/dataset_format.md``).

    Parameters
    ----------
    root : path-like
        The dataset folder (the one holding ``dataset.json``).
    filename_pattern : str, optional
        Regular expression with named groups ``pid`` and ``camid``, searched in each image's
        file name. Given here or as ``filename_pattern`` in ``dataset.json``, it is used when
        there is no ``annotations.csv``; given here, it also overrides the CSV.
    camid_base : int, optional
        Subtracted from pattern camids (1 for Market-style ``c1``…); default: ``dataset.json``'s
        ``camid_base``, else 0.
    eval_protocol : {"market", "no_filter"}
        How the gallery is filtered at evaluation.
    num_cameras : int
        Camera count for the SIE embedding (0: none).
    keypoints, parsing, masks : bool
        Read the ``keypoints/``, ``parsing/`` and ``masks/`` folders when present.
    on_bad_sample, verify, verbose
        As for :func:`kpr.data.datasets.market1501.market1501`.

    Returns
    -------
    ReIDDataset
        Named after ``dataset.json``. Train pids relabelled 0..P-1 by increasing raw pid;
        query/gallery pids raw; pid -1 (junk) dropped; pid 0 kept.
    """
    data_dir = Path(root).expanduser()
    if not data_dir.is_dir():
        raise DatasetError(f"folder: dataset root does not exist or is not a folder: {data_dir}")
    meta = read_metadata(data_dir)
    name: str = meta["name"]
    if eval_protocol not in ("market", "no_filter"):
        raise ConfigError(f"eval_protocol must be 'market' or 'no_filter', got {eval_protocol!r}")
    bad = BadSamples(name, on_bad_sample)
    image_root = require_dir(data_dir / "images", "images", name)
    split_dirs = {s: require_dir(image_root / s, f"{s} split", name) for s in REQUIRED_SPLITS}
    if (image_root / "train").is_dir():
        split_dirs["train"] = image_root / "train"
    images = {s: list_images(d) for s, d in split_dirs.items()}

    csv_path = data_dir / "annotations.csv"
    pattern_text = filename_pattern
    if pattern_text is None and not csv_path.is_file():
        pattern_text = meta.get("filename_pattern")
        if pattern_text is None:
            raise DatasetError(
                f"{name}: no {csv_path} and no filename_pattern (argument or dataset.json field)"
            )
    if pattern_text is not None:
        base = camid_base if camid_base is not None else meta.get("camid_base", 0)
        pattern = compile_filename_pattern(pattern_text)
        candidates = _candidates_from_pattern(images, pattern, base, bad)
        source = f"file names matching {pattern_text!r} (camid_base {base})"
    else:
        candidates = _candidates_from_csv(csv_path, data_dir, images, bad)
        source = str(csv_path)

    classes = meta.get("parsing_classes")
    kp_root = optional_root(data_dir / "keypoints" if keypoints else None, "keypoints", name)
    label_root = data_dir / "parsing" if parsing and (data_dir / "parsing").is_dir() else None
    mask_root = data_dir / "masks" if masks and (data_dir / "masks").is_dir() else None
    if label_root is not None and classes is None:
        raise DatasetError(
            f"{data_dir / 'dataset.json'}: parsing/ exists but 'parsing_classes' is missing"
        )
    splits: dict[Split, list[ReIDSample]] = {}
    for split in SPLITS:
        image_dir = split_dirs.get(split)
        if image_dir is None:
            splits[split] = []
            continue
        kp = _mirror(kp_root, split, image_dir, "keypoints", ".json", name)
        labels = _mirror(label_root, split, image_dir, "parsing", ".png", name)
        people = _mirror(mask_root, split, image_dir, "masks", ".png", name)
        splits[split] = build_samples(
            candidates[split],
            all_images=images[split],
            keypoints=kp,
            parsing=labels,
            parsing_format="label_map",
            bad=bad,
            verify=verify,
            check_parsing=functools.partial(check_label_map, num_classes=len(classes or ())),
            prompt_masks=people,
            check_masks=check_person_mask,
        )
    dataset = ReIDDataset(
        name=name,
        train=relabel_train(splits["train"]),
        query=splits["query"],
        gallery=splits["gallery"],
        num_cameras=num_cameras,
        parsing_classes=tuple(classes) if classes is not None else None,
        eval_protocol=eval_protocol,
    )
    notes = [
        f"dataset directory {data_dir}",
        f"identities and cameras from {source}",
        f"keypoints {kp_root or 'none'}; parsing labels {label_root or 'none'}; "
        f"person masks {mask_root or 'none'}",
    ]
    return finish(dataset, bad, verbose, notes)


@register_dataset("synthetic")
def synthetic(
    root: str | os.PathLike[str],
    *,
    keypoints: bool = True,
    parsing: bool = True,
    masks: bool = True,
    on_bad_sample: BadSamplePolicy = "raise",
    verify: bool = True,
    verbose: bool = True,
) -> ReIDDataset:
    """The built-in synthetic benchmark written by ``kpr synth``: a ``kpr-folder/1`` dataset
    named ``synthetic``, evaluated like Occluded-PoseTrack (no gallery filtering, no SIE).

    Parameters as for :func:`folder`.

    Raises
    ------
    DatasetError
        If ``root`` holds a ``kpr-folder/1`` dataset with another name.
    """
    data_dir = Path(root).expanduser()
    if data_dir.is_dir():
        found = read_metadata(data_dir)["name"]
        if found != SYNTHETIC_NAME:
            raise DatasetError(
                f"{data_dir / 'dataset.json'}: field 'name' is {found!r}, expected "
                f"{SYNTHETIC_NAME!r}; use the 'folder' dataset for other kpr-folder data"
            )
    return folder(
        data_dir,
        eval_protocol="no_filter",
        keypoints=keypoints,
        parsing=parsing,
        masks=masks,
        on_bad_sample=on_bad_sample,
        verify=verify,
        verbose=verbose,
    )


def _mirror(
    side_root: Path | None, split: Split, image_dir: Path, kind: str, suffix: str, name: str
) -> Companion | None:
    """Side files of one split in a folder tree mirroring ``images/<split>/``."""
    if side_root is None:
        return None
    directory = require_dir(side_root / split, f"{split} {kind}", name)
    return Companion(
        kind,
        directory,
        lambda p: p.relative_to(image_dir).with_suffix(suffix).as_posix(),
        suffix,
        recursive=True,
    )


def _candidates_from_pattern(
    images: dict[Split, list[Path]], pattern: re.Pattern[str], camid_base: int, bad: BadSamples
) -> dict[Split, list[Candidate]]:
    candidates: dict[Split, list[Candidate]] = {s: [] for s in SPLITS}
    for split, paths in images.items():
        for path in paths:
            parse = functools.partial(parse_filename, pattern=pattern, camid_base=camid_base)
            parsed = bad.guard(parse_image_name, path, parse)
            if parsed is not None and parsed[0] != JUNK_PID:
                candidates[split].append(Candidate(path, parsed[0], parsed[1], split))
    return candidates


def _candidates_from_csv(
    csv_path: Path, data_dir: Path, images: dict[Split, list[Path]], bad: BadSamples
) -> dict[Split, list[Candidate]]:
    """Candidates from ``annotations.csv``; extra columns become (typed) attributes."""
    try:
        with open(csv_path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            header = tuple(reader.fieldnames or ())
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"{csv_path}: cannot read annotations: {exc}") from exc
    if header[: len(REQUIRED_COLUMNS)] != REQUIRED_COLUMNS:
        raise DatasetError(
            f"{csv_path}: header must start with {','.join(REQUIRED_COLUMNS)}, "
            f"got {','.join(header)}"
        )
    extra = header[len(REQUIRED_COLUMNS) :]
    candidates: dict[Split, list[Candidate]] = {s: [] for s in SPLITS}
    listed: set[Path] = set()
    mentioned = {data_dir / (row["image"] or "") for row in rows}
    for line, row in enumerate(rows, start=2):
        where = f"{csv_path}:{line}"
        parsed = bad.guard(_parse_row, row, where, data_dir, listed)
        if parsed is None:
            continue
        image, split, pid, camid = parsed
        listed.add(image)
        if pid != JUNK_PID:
            attributes = {k: coerce_value(row[k] or "") for k in extra}
            candidates[split].append(Candidate(image, pid, camid, split, attributes))
    for paths in images.values():
        for path in paths:
            if path not in mentioned:
                bad.report(f"{path}: image is not listed in {csv_path}")
    return candidates


def _parse_row(
    row: dict[str, str], where: str, data_dir: Path, listed: set[Path]
) -> tuple[Path, Split, int, int]:
    rel = PurePosixPath(row["image"] or "")
    split = row["split"]
    if split not in SPLITS:
        raise DatasetError(f"{where}: split {split!r} is not one of {', '.join(SPLITS)}")
    if rel.is_absolute() or ".." in rel.parts or rel.parts[:2] != ("images", split):
        raise DatasetError(f"{where}: image {str(rel)!r} is not under images/{split}/")
    image = data_dir / Path(*rel.parts)
    if image in listed:
        raise DatasetError(f"{where}: image {str(rel)!r} is listed twice")
    if not image.is_file():
        raise DatasetError(f"{where}: image file not found: {image}")
    try:
        pid, camid = int(row["pid"]), int(row["camid"])
    except (TypeError, ValueError):
        raise DatasetError(
            f"{where}: pid {row['pid']!r} / camid {row['camid']!r} are not integers"
        ) from None
    if camid < 0:
        raise DatasetError(f"{where}: camid {camid} is negative")
    return image, cast(Split, split), pid, camid
