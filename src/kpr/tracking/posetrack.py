"""PoseTrack21 video JSONs: read given detections or ground truth, write tracks.

One file per video (``posetrack_data/<split>/<video>.json``, KPR notes §8.5)::

    {"images": [{"file_name": "images/val/<video>/000000.jpg", "id": 10000000000, ...}, ...],
     "annotations": [{"image_id": ..., "track_id": 3, "bbox": [x, y, w, h],
                      "keypoints": [x, y, v] * 17, "bbox_head": [x, y, w, h], ...}, ...],
     "categories": [{"id": 1, "name": "person", "keypoints": [...], "skeleton": [...]}]}

``images`` are in temporal order; ``file_name`` is relative to the PoseTrack21 root. Errors name
the file and the field (``annotations[12].bbox``).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from kpr.errors import DatasetError
from kpr.io_utils import write_text_atomic
from kpr.keypoints.coco import COCO17_NAMES, NUM_KEYPOINTS, SKELETON_EDGES
from kpr.pose.types import Box, box_around

__all__ = [
    "PoseTrackAnnotation",
    "PoseTrackFrame",
    "find_frames_root",
    "read_posetrack",
    "write_posetrack",
]


@dataclasses.dataclass(frozen=True, eq=False)
class PoseTrackAnnotation:
    """One person in one frame.

    Attributes
    ----------
    track_id : int or None
        None for detections without an id (tracker input).
    box : (x0, y0, x1, y1)
        Frame pixels.
    keypoints : ndarray [17, 3]
        COCO-17 (x, y, c); zeros where absent.
    score : float
        Detection confidence (``score``, 1.0 when absent).
    head_box : [x, y, w, h] or None
        ``bbox_head`` (its diagonal sets the keypoint tolerance in evaluation).
    visibility : float or None
    field : str
        Where it came from, for error messages (``annotations[12]``).
    """

    track_id: int | None
    box: Box
    keypoints: NDArray[np.float64]
    score: float = 1.0
    head_box: tuple[float, float, float, float] | None = None
    visibility: float | None = None
    field: str = ""


@dataclasses.dataclass(frozen=True, eq=False)
class PoseTrackFrame:
    """One image of a video: its id, ``file_name`` and people."""

    image_id: int
    file_name: str
    annotations: tuple[PoseTrackAnnotation, ...]


def _numbers(value: object, n: int, where: str) -> list[float]:
    if not isinstance(value, list) or len(value) != n:
        raise DatasetError(f"{where}: expected a list of {n} numbers")
    try:
        out = [float(v) for v in value]
    except (TypeError, ValueError) as exc:
        raise DatasetError(f"{where}: expected {n} numbers ({exc})") from None
    if not all(map(math.isfinite, out)):
        raise DatasetError(f"{where}: contains NaN or infinite values")
    return out


def _annotation(ann: object, where: str, path: Path) -> tuple[object, PoseTrackAnnotation]:
    if not isinstance(ann, dict):
        raise DatasetError(f"{path}: {where}: expected an object")
    if "image_id" not in ann:
        raise DatasetError(f"{path}: {where}: missing image_id")
    kps = np.zeros((NUM_KEYPOINTS, 3))
    if ann.get("keypoints") is not None:
        kps = np.array(_numbers(ann["keypoints"], 3 * NUM_KEYPOINTS, f"{path}: {where}.keypoints"))
        kps = kps.reshape(NUM_KEYPOINTS, 3)
        kps[kps[:, 2] <= 0] = 0.0
    if ann.get("bbox") is not None:
        x, y, w, h = _numbers(ann["bbox"], 4, f"{path}: {where}.bbox")
        if w < 0 or h < 0:
            raise DatasetError(f"{path}: {where}.bbox: negative width or height ({w}, {h})")
        box = (x, y, x + w, y + h)
    elif (kps[:, 2] > 0).any():
        box = box_around(kps)
    else:
        raise DatasetError(f"{path}: {where}: neither bbox nor keypoints")
    track_id = ann.get("track_id")
    if track_id is not None and (isinstance(track_id, bool) or not isinstance(track_id, int)):
        raise DatasetError(f"{path}: {where}.track_id: expected an integer, got {track_id!r}")
    head = ann.get("bbox_head")
    head_box = tuple(_numbers(head, 4, f"{path}: {where}.bbox_head")) if head else None
    score = ann.get("score", 1.0)
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
        raise DatasetError(f"{path}: {where}.score: expected a finite number, got {score!r}")
    visibility = ann.get("visibility")
    return ann["image_id"], PoseTrackAnnotation(
        track_id=track_id,
        box=box,
        keypoints=kps,
        score=float(score),
        head_box=head_box,  # type: ignore[arg-type]
        visibility=None if visibility is None else float(visibility),
        field=where,
    )


def read_posetrack(path: str | Path) -> list[PoseTrackFrame]:
    """The frames of a PoseTrack21 video JSON, in ``images`` order, with their people."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such PoseTrack21 JSON file") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list):
        raise DatasetError(f"{path}: expected a PoseTrack21 video JSON with an 'images' list")
    annotations = doc.get("annotations", [])
    if not isinstance(annotations, list):
        raise DatasetError(f"{path}: 'annotations' must be a list")
    order: dict[object, int] = {}
    names = []
    for i, image in enumerate(doc["images"]):
        if not isinstance(image, dict) or "id" not in image or "file_name" not in image:
            raise DatasetError(f"{path}: images[{i}]: needs 'id' and 'file_name'")
        if image["id"] in order:
            raise DatasetError(f"{path}: images[{i}]: id {image['id']} appears twice")
        order[image["id"]] = i
        names.append(str(image["file_name"]))
    people: list[list[PoseTrackAnnotation]] = [[] for _ in names]
    for j, ann in enumerate(annotations):
        image_id, parsed = _annotation(ann, f"annotations[{j}]", path)
        if image_id not in order:
            raise DatasetError(f"{path}: annotations[{j}]: image_id {image_id} is not in 'images'")
        people[order[image_id]].append(parsed)
    return [
        PoseTrackFrame(image_id, name, tuple(anns))  # type: ignore[arg-type]
        for image_id, name, anns in zip(order, names, people, strict=True)
    ]


def find_frames_root(json_path: str | Path, frames: Sequence[PoseTrackFrame]) -> Path:
    """The directory ``file_name`` is relative to: the JSON's nearest ancestor where the first
    frame exists (PoseTrack21 names are relative to its root, two levels above the JSON)."""
    json_path = Path(json_path).resolve()
    if not frames:
        raise DatasetError(f"{json_path}: no images")
    for parent in json_path.parents:
        if (parent / frames[0].file_name).is_file():
            return parent
    raise DatasetError(
        f"{json_path}: images[0].file_name {frames[0].file_name!r} not found next to the JSON or "
        "in any directory above it (pass --frames-root)"
    )


def _annotation_json(ann: PoseTrackAnnotation, ann_id: int, image_id: int) -> dict[str, object]:
    x0, y0, x1, y1 = ann.box
    out: dict[str, object] = {
        "id": ann_id,
        "image_id": image_id,
        "track_id": ann.track_id,
        "person_id": ann.track_id,
        "bbox": [round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)],
        "keypoints": [round(float(v), 2) for v in ann.keypoints.reshape(-1)],
        "scores": [round(float(c), 4) for c in ann.keypoints[:, 2]],
        "score": round(ann.score, 4),
        "category_id": 1,
    }
    if ann.head_box is not None:
        out["bbox_head"] = [round(v, 2) for v in ann.head_box]
    if ann.visibility is not None:
        out["visibility"] = ann.visibility
    return out


def posetrack_document(frames: Sequence[PoseTrackFrame], video_name: str) -> dict[str, object]:
    """The JSON object of a video (``images``, ``annotations``, ``categories``)."""
    images, annotations = [], []
    for index, frame in enumerate(frames):
        images.append(
            {
                "file_name": frame.file_name,
                "id": frame.image_id,
                "frame_id": frame.image_id,
                "vid_id": video_name,
                "nframes": len(frames),
                "frame_index": index,
                "is_labeled": True,
                "ignore_regions_x": [],
                "ignore_regions_y": [],
            }
        )
        for ann in frame.annotations:
            annotations.append(_annotation_json(ann, len(annotations) + 1, frame.image_id))
    category = {
        "id": 1,
        "name": "person",
        "supercategory": "person",
        "keypoints": list(COCO17_NAMES),
        "skeleton": [[a + 1, b + 1] for a, b in SKELETON_EDGES],
    }
    return {"images": images, "annotations": annotations, "categories": [category]}


def write_posetrack(path: str | Path, frames: Sequence[PoseTrackFrame], video_name: str) -> Path:
    """Write a video JSON atomically (a reader never sees a half-written file)."""
    write_text_atomic(path, json.dumps(posetrack_document(frames, video_name)))
    return Path(path)
