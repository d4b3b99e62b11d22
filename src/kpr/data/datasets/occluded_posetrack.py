"""``occluded_posetrack``: Occluded-PoseTrack-ReID crops from PoseTrack21 and the released sampling.

::

    PoseTrack21/
      images/{train,val}/<video>/<frame>.jpg                 original frames
      posetrack_data/{train,val}/*.json                      one annotation file per video
      occluded_posetrack_reid/
        {train,val}_dataset_sampling.json                    released: detection id -> split
        masks/anns/{train,val}_reid_masks_anns.json          released (optional): id -> masks_path
        masks/{train,val}/<masks_path>                       released [36, 96, 32] PifPaf fields
        images/{train,val}/<video_id>/<person_id>_<video_id>_<image_id>.jpg   written by kpr
        images/anns/{train,val}_kpr_crops.json               written by kpr (crop manifest)

The sampled detections of the PoseTrack21 train set form the train split; those of the val set
form the test set, where per person the ``int(query_ratio * n)`` most occluded detections are the
queries and the others the gallery (recomputed on every build, whatever the sampling file says).

Crops are extracted once: each crop file and then the manifest are written atomically, and a
later build reads the manifest and only extracts detections whose crop is missing. Delete the
manifest to force a new extraction.
"""

from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from tqdm import tqdm

from kpr.data.datasets import register_dataset
from kpr.data.datasets._common import (
    BadSamplePolicy,
    BadSamples,
    DatasetError,
    check_image,
    check_pifpaf_fields,
    finish,
    logger,
    relabel_train,
    require_dir,
    resolve_dataset_dir,
)
from kpr.data.samples import ReIDDataset, ReIDSample, Split
from kpr.errors import ConfigError, ImageReadError, KeypointFormatError
from kpr.imaging import read_rgb
from kpr.io_utils import write_bytes_atomic, write_text_atomic
from kpr.keypoints import NUM_KEYPOINTS, keypoints_in_frame, parse_keypoints_json, rescale_keypoints

NAME = "occluded_posetrack"
DIRNAME = "PoseTrack21"
REID_DIR = "occluded_posetrack_reid"
MAX_CROP_HW = (384, 128)
MANIFEST_FORMAT = "kpr-occluded-posetrack-crops/1"
# Split values allowed in each released sampling file ("none" = not sampled).
SAMPLING_SPLITS = {"train": ("train", "none"), "val": ("query", "gallery", "none")}

BBox = tuple[float, float, float, float]  # PoseTrack21 [left, top, width, height]
Box = tuple[int, int, int, int]  # x0, y0, x1, y1: pixel columns [x0, x1), rows [y0, y1)


@dataclass(frozen=True)
class Frame:
    """One PoseTrack21 frame: its id, path relative to the PoseTrack21 root, and video."""

    id: int
    file_name: str
    video_id: str


@dataclass(frozen=True, eq=False)
class Detection:
    """One PoseTrack21 person annotation; ``keypoints`` [17, 3] in frame pixels, c ∈ {0, 1}."""

    id: int
    image_id: int
    person_id: int | None
    bbox: BBox | None
    keypoints: NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class CropRecord:
    """A written crop and everything a sample needs; one entry of the crop manifest."""

    detection_id: int
    person_id: int
    video_id: str
    image_id: int
    image: str
    width: int
    height: int
    keypoints: NDArray[np.float64]
    negatives: NDArray[np.float64]
    occ_level: float
    visibility: float

    def to_json(self) -> dict[str, Any]:
        return {
            "person_id": self.person_id,
            "video_id": self.video_id,
            "image_id": self.image_id,
            "image": self.image,
            "width": self.width,
            "height": self.height,
            "keypoints": self.keypoints.tolist(),
            "negative_keypoints": self.negatives.tolist(),
            "occ_level": self.occ_level,
            "visibility": self.visibility,
        }

    @classmethod
    def from_json(cls, detection_id: int, obj: dict[str, Any]) -> CropRecord:
        negatives = np.asarray(obj["negative_keypoints"], dtype=np.float64)
        return cls(
            detection_id=detection_id,
            person_id=int(obj["person_id"]),
            video_id=str(obj["video_id"]),
            image_id=int(obj["image_id"]),
            image=str(obj["image"]),
            width=int(obj["width"]),
            height=int(obj["height"]),
            keypoints=np.asarray(obj["keypoints"], dtype=np.float64).reshape(NUM_KEYPOINTS, 3),
            negatives=negatives.reshape(-1, NUM_KEYPOINTS, 3),
            occ_level=float(obj["occ_level"]),
            visibility=float(obj["visibility"]),
        )


# --- pure geometry -------------------------------------------------------------------------


def clip_box(bbox_ltwh: Sequence[float], frame_hw: tuple[int, int]) -> Box | None:
    """The pixels a [left, top, width, height] box covers, clipped to the frame; ``None`` if empty.

    ``clip_box([-20, 10, 60, 100], (480, 640))`` → ``(0, 10, 40, 110)``.
    """
    left, top, width, height = (float(v) for v in bbox_ltwh)
    x0, y0 = max(0, math.floor(left)), max(0, math.floor(top))
    x1 = min(frame_hw[1], math.ceil(left + width))
    y1 = min(frame_hw[0], math.ceil(top + height))
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1, y1


def crop_size(box: Box, max_hw: tuple[int, int] = MAX_CROP_HW) -> tuple[int, int]:
    """(H, W) of the written crop: the box size, or exactly ``max_hw`` if the box exceeds it in
    either dimension (aspect ratio not kept, as officially)."""
    h, w = box[3] - box[1], box[2] - box[0]
    return max_hw if h > max_hw[0] or w > max_hw[1] else (h, w)


def keypoints_to_crop(
    kps: NDArray[np.float64], box: Box, crop_hw: tuple[int, int]
) -> NDArray[np.float64]:
    """Frame keypoints [..., 17, 3] → crop pixels; invisible or out-of-box points become 0."""
    x0, y0, x1, y1 = box
    out = np.array(kps, dtype=np.float64)
    out[..., 0] -= x0
    out[..., 1] -= y0
    box_hw = (y1 - y0, x1 - x0)
    out[~(keypoints_in_frame(out, box_hw) & (out[..., 2] > 0))] = 0.0
    return rescale_keypoints(out, box_hw, crop_hw)


def negative_keypoints(
    others: NDArray[np.float64], box: Box, crop_hw: tuple[int, int]
) -> NDArray[np.float64]:
    """Other people's skeletons [M, 17, 3] in crop pixels, minus those with no point left."""
    if len(others) == 0:
        return np.zeros((0, NUM_KEYPOINTS, 3))
    negs = keypoints_to_crop(others, box, crop_hw)
    return negs[negs[..., 2].sum(axis=-1) > 0]


def occlusion_level(target_visibility_sum: float, negatives: NDArray[np.float64]) -> float:
    """Σ negative visibilities / Σ target visibilities, or 2·Σ negative if the target has none.

    The target sum counts every visible keypoint of the annotation (as officially), the
    negatives only the points inside the crop.
    """
    negative = float(negatives[..., 2].sum())
    if target_visibility_sum == 0:
        return 2.0 * negative
    return negative / float(target_visibility_sum)


def select_queries(detections: Iterable[tuple[int, int, float]], ratio: float) -> set[int]:
    """Detection ids that become queries: per person, the ``int(ratio * n)`` highest occ_levels.

    Parameters
    ----------
    detections : iterable of (detection_id, person_id, occ_level)
    ratio : float

    Ties in occ_level are broken by increasing detection id.
    """
    per_person: dict[int, list[tuple[float, int]]] = defaultdict(list)
    for det_id, person_id, occ in detections:
        per_person[person_id].append((occ, det_id))
    queries: set[int] = set()
    for entries in per_person.values():
        ranked = sorted(entries, key=lambda e: (-e[0], e[1]))
        queries.update(det_id for _, det_id in ranked[: int(len(ranked) * ratio)])
    return queries


def extract_crop(frame: NDArray[np.uint8], box: Box, crop_hw: tuple[int, int]) -> NDArray[np.uint8]:
    """Cut ``box`` out of an RGB frame and resize it to ``crop_hw`` if it differs."""
    x0, y0, x1, y1 = box
    crop = frame[y0:y1, x0:x1]
    if crop.shape[:2] != crop_hw:
        # The official call passes INTER_CUBIC in cv2.resize's dst slot, so it is bilinear.
        crop = cv2.resize(crop, (crop_hw[1], crop_hw[0]), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(crop)


# --- file formats --------------------------------------------------------------------------


def read_pandas_table(obj: Any, columns: Sequence[str], source: str) -> list[dict[str, Any]]:
    """Rows of a ``DataFrame.to_json`` table in any of the orientations pandas writes.

    ``columns`` (the default orientation): ``{"id": {"0": 5, …}, "split": {"0": "train", …}}``;
    ``index``: ``{"0": {"id": 5, "split": "train"}, …}``; ``records``: ``[{"id": 5, …}, …]``;
    ``split``: ``{"columns": [...], "index": [...], "data": [[...], …]}``.

    Raises
    ------
    DatasetError
        On any other shape, or a row without one of ``columns``.
    """
    rows: list[Any]
    if isinstance(obj, list):
        rows = obj
    elif isinstance(obj, dict) and isinstance(obj.get("columns"), list) and "data" in obj:
        names = obj["columns"]
        rows = [dict(zip(names, values, strict=False)) for values in obj["data"] or []]
    elif (
        isinstance(obj, dict)
        and set(columns) <= set(obj)
        and all(isinstance(obj[c], dict) for c in columns)
    ):
        index = list(obj[columns[0]])
        rows = [{c: obj[c].get(i) for c in obj if isinstance(obj[c], dict)} for i in index]
    elif isinstance(obj, dict) and all(isinstance(v, dict) for v in obj.values()):
        rows = list(obj.values())
    else:
        raise DatasetError(f"{source}: not a pandas to_json table with columns {list(columns)}")
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or not set(columns) <= set(row):
            raise DatasetError(f"{source}: row {i} lacks one of the columns {list(columns)}")
    return rows


def _as_int(value: Any, where: str) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value != int(value)
    ):
        raise DatasetError(f"{where}: expected an integer, got {value!r}")
    return int(value)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read JSON: {exc}") from exc


def read_sampling(path: Path, allowed: Sequence[str]) -> dict[int, str]:
    """Detection id → split from a released ``*_dataset_sampling.json``."""
    sampling: dict[int, str] = {}
    for i, row in enumerate(read_pandas_table(_read_json(path), ("id", "split"), str(path))):
        det_id = _as_int(row["id"], f"{path}: row {i} field 'id'")
        if row["split"] not in allowed:
            raise DatasetError(
                f"{path}: row {i} field 'split': {row['split']!r} is not one of {list(allowed)}"
            )
        if det_id in sampling:
            raise DatasetError(f"{path}: detection id {det_id} appears twice")
        sampling[det_id] = row["split"]
    return sampling


def load_posetrack_annotations(ann_dir: Path) -> tuple[dict[int, Frame], list[Detection]]:
    """Frames and person annotations of every video JSON in ``posetrack_data/<set>/``.

    Raises
    ------
    DatasetError
        If there is no JSON, or a file lacks ``images``/``annotations`` or a required field.
    """
    files = sorted(ann_dir.glob("*.json"))
    if not files:
        raise DatasetError(f"{NAME}: no PoseTrack21 annotation files (*.json) in {ann_dir}")
    frames: dict[int, Frame] = {}
    detections: list[Detection] = []
    for path in files:
        data = _read_json(path)
        if not isinstance(data, dict) or not all(
            isinstance(data.get(k), list) for k in ("images", "annotations")
        ):
            raise DatasetError(f"{path}: expected lists 'images' and 'annotations'")
        for i, img in enumerate(data["images"]):
            where = f"{path}: images[{i}]"
            if not isinstance(img, dict) or not {"id", "file_name", "vid_id"} <= set(img):
                raise DatasetError(f"{where}: needs fields id, file_name and vid_id")
            frame_id = _as_int(img["id"], f"{where} field 'id'")
            frame = Frame(frame_id, str(img["file_name"]), str(img["vid_id"]))
            frames[frame.id] = frame
        for i, ann in enumerate(data["annotations"]):
            detections.append(_parse_annotation(ann, f"{path}: annotations[{i}]"))
    return frames, detections


def _parse_annotation(ann: Any, where: str) -> Detection:
    if not isinstance(ann, dict) or not {"id", "image_id"} <= set(ann):
        raise DatasetError(f"{where}: needs fields id and image_id")
    bbox = ann.get("bbox")
    if bbox is not None and (
        not isinstance(bbox, list)
        or len(bbox) != 4
        or not all(isinstance(v, (int, float)) for v in bbox)
    ):
        raise DatasetError(f"{where} field 'bbox': expected [left, top, width, height]")
    raw_kps = ann.get("keypoints")
    try:
        kps = parse_keypoints_json({"keypoints": raw_kps}, where).target if raw_kps else None
    except KeypointFormatError as exc:
        raise DatasetError(str(exc)) from exc
    person = ann.get("person_id")
    return Detection(
        id=_as_int(ann["id"], f"{where} field 'id'"),
        image_id=_as_int(ann["image_id"], f"{where} field 'image_id'"),
        person_id=None if person is None else _as_int(person, f"{where} field 'person_id'"),
        bbox=(float(bbox[0]), float(bbox[1]), float(bbox[2]), float(bbox[3])) if bbox else None,
        keypoints=kps if kps is not None else np.zeros((NUM_KEYPOINTS, 3)),
    )


def load_manifest(path: Path) -> dict[int, CropRecord]:
    """Crop records of a previous build; empty (with a log line) if absent, stale or unreadable."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != MANIFEST_FORMAT or data.get("max_crop_hw") != list(MAX_CROP_HW):
            logger.info("%s: %s is from another crop format; extracting again", NAME, path)
            return {}
        return {int(k): CropRecord.from_json(int(k), v) for k, v in data["crops"].items()}
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        logger.warning("%s: unreadable crop manifest %s (%s); extracting again", NAME, path, exc)
        return {}


def write_manifest(path: Path, split: str, records: dict[int, CropRecord]) -> None:
    """Write the crop manifest atomically."""
    data = {
        "format": MANIFEST_FORMAT,
        "split": split,
        "max_crop_hw": list(MAX_CROP_HW),
        "crops": {str(k): records[k].to_json() for k in sorted(records)},
    }
    write_text_atomic(path, json.dumps(data, allow_nan=False) + "\n")


def encode_jpeg(rgb: NDArray[np.uint8]) -> bytes:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ImageReadError("cannot encode crop as JPEG")
    return buf.tobytes()


# --- crop extraction -----------------------------------------------------------------------


def extract_crops(
    pt_dir: Path,
    images_dir: Path,
    split: str,
    todo: Sequence[int],
    bad: BadSamples,
    progress: bool,
    records: dict[int, CropRecord],
) -> None:
    """Cut, write and describe the crops of the detections ``todo`` of one PoseTrack21 set.

    Each written crop is added to ``records`` at once, so the caller can record the crops
    written before an error.
    """
    ann_dir = require_dir(pt_dir / "posetrack_data" / split, f"{split} annotations", NAME)
    frames, detections = load_posetrack_annotations(ann_dir)
    by_id = {d.id: d for d in detections}
    in_frame: dict[int, list[Detection]] = defaultdict(list)
    for det in detections:
        in_frame[det.image_id].append(det)
    wanted: dict[int, list[tuple[Detection, BBox, int]]] = defaultdict(list)
    for det_id in todo:
        det = by_id.get(det_id)
        if det is None:
            bad.report(f"sampled detection {det_id} is not in the annotations of {ann_dir}")
        elif det.image_id not in frames:
            bad.report(f"detection {det_id}: frame {det.image_id} is not listed in {ann_dir}")
        elif det.bbox is None or det.person_id is None:
            bad.report(f"detection {det_id} in {ann_dir} has no bbox or no person_id")
        else:
            wanted[det.image_id].append((det, det.bbox, det.person_id))
    order = sorted(wanted, key=lambda i: (frames[i].video_id, i))
    with tqdm(total=len(todo), desc=f"{NAME} {split} crops", disable=not progress) as bar:
        for image_id in order:
            frame = frames[image_id]
            try:
                rgb = read_rgb(pt_dir / frame.file_name)
            except ImageReadError as exc:
                for det, _, _ in wanted[image_id]:
                    bad.report(f"detection {det.id}: {exc}")
                bar.update(len(wanted[image_id]))
                continue
            for det, bbox, person_id in wanted[image_id]:
                record = _crop_one(
                    rgb, det, bbox, person_id, frame, in_frame[image_id], images_dir, split, bad
                )
                if record is not None:
                    records[det.id] = record
                bar.update()


def _crop_one(
    rgb: NDArray[np.uint8],
    det: Detection,
    bbox: BBox,
    person_id: int,
    frame: Frame,
    others: Sequence[Detection],
    images_dir: Path,
    split: str,
    bad: BadSamples,
) -> CropRecord | None:
    """Write the crop of ``det`` (whose ``bbox`` and ``person_id`` are given) and describe it."""
    box = clip_box(bbox, rgb.shape[:2])
    if box is None:
        bad.report(
            f"detection {det.id}: bbox {list(bbox)} lies outside the "
            f"{rgb.shape[1]}x{rgb.shape[0]} frame {frame.file_name}"
        )
        return None
    hw = crop_size(box)
    other_kps = [o.keypoints for o in others if o.id != det.id]
    negatives = negative_keypoints(
        np.stack(other_kps) if other_kps else np.zeros((0, NUM_KEYPOINTS, 3)), box, hw
    )
    rel = f"{split}/{frame.video_id}/{person_id}_{frame.video_id}_{frame.id}.jpg"
    write_bytes_atomic(images_dir / rel, encode_jpeg(extract_crop(rgb, box, hw)))
    return CropRecord(
        detection_id=det.id,
        person_id=person_id,
        video_id=frame.video_id,
        image_id=frame.id,
        image=rel,
        width=hw[1],
        height=hw[0],
        keypoints=keypoints_to_crop(det.keypoints, box, hw),
        negatives=negatives,
        occ_level=occlusion_level(float(det.keypoints[:, 2].sum()), negatives),
        visibility=float(det.keypoints[:, 2].mean()),
    )


def ensure_crops(
    pt_dir: Path,
    reid_dir: Path,
    split: str,
    sampled: Sequence[int],
    bad: BadSamples,
    progress: bool,
) -> tuple[dict[int, CropRecord], int]:
    """Crop records of the sampled detections, extracting only those not on disk yet.

    Returns the records and the number of crops written by this call.
    """
    images_dir = reid_dir / "images"
    manifest_path = images_dir / "anns" / f"{split}_kpr_crops.json"
    known = load_manifest(manifest_path)
    ready = {i: known[i] for i in sampled if i in known and (images_dir / known[i].image).is_file()}
    todo = [i for i in sampled if i not in ready]
    if not todo:
        return ready, 0
    new: dict[int, CropRecord] = {}
    try:
        extract_crops(pt_dir, images_dir, split, todo, bad, progress, new)
    finally:
        # Also after an error, so that the crops already written are not extracted again.
        if new:
            write_manifest(manifest_path, split, {**known, **new})
    return {**ready, **new}, len(new)


def load_masks_index(reid_dir: Path, masks_dir: str | None, split: str) -> dict[int, Path] | None:
    """Detection id → parsing file from the released masks annotations; ``None`` if absent."""
    if masks_dir is None:
        return None
    anns = reid_dir / masks_dir / "anns" / f"{split}_reid_masks_anns.json"
    if not anns.is_file():
        logger.info("%s: no parsing labels for %s (%s not found)", NAME, split, anns)
        return None
    index: dict[int, Path] = {}
    for i, row in enumerate(read_pandas_table(_read_json(anns), ("id", "masks_path"), str(anns))):
        if row["masks_path"]:
            index[_as_int(row["id"], f"{anns}: row {i} field 'id'")] = (
                reid_dir / masks_dir / split / str(row["masks_path"])
            )
    return index


# --- the adapter ---------------------------------------------------------------------------


@register_dataset(NAME)
def occluded_posetrack(
    root: str | os.PathLike[str],
    *,
    masks_dir: str | None = "masks",
    query_ratio: float = 0.2,
    on_bad_sample: BadSamplePolicy = "raise",
    verify: bool = True,
    verbose: bool = True,
) -> ReIDDataset:
    """Occluded-PoseTrack-ReID (train: PoseTrack21 train; query/gallery: PoseTrack21 val).

    Parameters
    ----------
    root : path-like
        The folder containing ``PoseTrack21/``, or that folder itself.
    masks_dir : str or None
        Folder of ``occluded_posetrack_reid/`` holding the released parsing labels and their
        ``anns/<set>_reid_masks_anns.json``; without that file the samples have no labels.
    query_ratio : float
        Share of each test person's detections (the most occluded) used as queries.
    on_bad_sample, verify, verbose
        As for :func:`kpr.data.datasets.market1501.market1501`. A missing or corrupt frame,
        an empty box, or a sampled id absent from the annotations is a bad sample.

    Returns
    -------
    ReIDDataset
        Samples carry ``target_keypoints`` [17, 3] and ``negative_keypoints`` [M, 17, 3] in crop
        pixels and ``attributes`` ``occ_level``, ``video_id``, ``image_id``, ``detection_id``,
        ``visibility``. Train pids are relabelled 0..P-1 by increasing PoseTrack21 person_id;
        query/gallery pids are the person_ids. camid = index of the video in the set's sorted
        video ids. No SIE cameras; evaluation without gallery filtering.
    """
    if not 0.0 <= query_ratio <= 1.0:
        raise ConfigError(f"query_ratio must be in [0, 1], got {query_ratio}")
    bad = BadSamples(NAME, on_bad_sample)
    pt_dir = resolve_dataset_dir(root, DIRNAME, ("posetrack_data",), NAME)
    reid_dir = require_dir(pt_dir / REID_DIR, "Occluded-PoseTrack-ReID annotations", NAME)
    samples: dict[str, list[ReIDSample]] = {}
    notes = [f"dataset directory {pt_dir}"]
    for pt_split in ("train", "val"):
        sampling_path = reid_dir / f"{pt_split}_dataset_sampling.json"
        if not sampling_path.is_file():
            raise DatasetError(f"{NAME}: missing released sampling file {sampling_path}")
        sampling = read_sampling(sampling_path, SAMPLING_SPLITS[pt_split])
        sampled = sorted(i for i, s in sampling.items() if s != "none")
        records, written = ensure_crops(pt_dir, reid_dir, pt_split, sampled, bad, verbose)
        masks = load_masks_index(reid_dir, masks_dir, pt_split)
        samples[pt_split] = _to_samples(
            records, reid_dir / "images", pt_split, query_ratio, masks, bad, verify
        )
        notes.append(
            f"{pt_split}: {len(sampled)} sampled detections, {written} crops written, "
            f"{len(records) - written} reused; parsing labels {'yes' if masks else 'none'}"
        )
    dataset = ReIDDataset(
        name=NAME,
        train=relabel_train(samples["train"]),
        query=[s for s in samples["val"] if s.split == "query"],
        gallery=[s for s in samples["val"] if s.split == "gallery"],
        num_cameras=0,
        eval_protocol="no_filter",
    )
    return finish(dataset, bad, verbose, notes)


def _to_samples(
    records: dict[int, CropRecord],
    images_dir: Path,
    pt_split: str,
    query_ratio: float,
    masks: dict[int, Path] | None,
    bad: BadSamples,
    verify: bool,
) -> list[ReIDSample]:
    """Samples of one PoseTrack21 set, ordered by (person, detection id)."""
    usable: list[tuple[CropRecord, Path | None]] = []
    for det_id in sorted(records, key=lambda i: (records[i].person_id, i)):
        rec = records[det_id]
        image = images_dir / rec.image
        if verify and not bad.passes(check_image, image):
            continue
        mask: Path | None = None
        if masks is not None:
            mask = masks.get(det_id)
            if mask is None:
                bad.report(f"detection {det_id}: no parsing labels in the masks annotations")
                continue
            if not mask.is_file():
                bad.report(f"detection {det_id}: parsing file not found: {mask}")
                continue
            if verify and not bad.passes(check_pifpaf_fields, mask):
                continue
        usable.append((rec, mask))
    queries: set[int] = set()
    if pt_split == "val":
        queries = select_queries(
            ((r.detection_id, r.person_id, r.occ_level) for r, _ in usable), query_ratio
        )
    cameras = {v: i for i, v in enumerate(sorted({r.video_id for r, _ in usable}))}
    out: list[ReIDSample] = []
    for rec, mask in usable:
        split: Split = "train"
        if pt_split == "val":
            split = "query" if rec.detection_id in queries else "gallery"
        out.append(
            ReIDSample(
                image=images_dir / rec.image,
                pid=rec.person_id,
                camid=cameras[rec.video_id],
                split=split,
                target_keypoints=rec.keypoints,
                negative_keypoints=rec.negatives,
                parsing=mask,
                parsing_format="pifpaf36" if mask is not None else None,
                attributes={
                    "occ_level": rec.occ_level,
                    "video_id": rec.video_id,
                    "image_id": rec.image_id,
                    "detection_id": rec.detection_id,
                    "visibility": rec.visibility,
                },
            )
        )
    return out
