"""Writers of tiny dataset trees in the real on-disk layouts (real file names and JSON shapes)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

KP_DIR = "pifpaf_keypoints_pifpaf_maskrcnn_filtering"
MASKS_DIR = "pifpaf_maskrcnn_filtering"

MARKET_IMAGES = {
    "bounding_box_train": [
        "0002_c1s1_000451_03.jpg",
        "0002_c2s1_000301_01.jpg",
        "0007_c3s3_077419_03.jpg",
        "0010_c6s4_002452_02.jpg",
    ],
    "query": ["0005_c1s1_001051_00.jpg", "0008_c5s1_009751_00.jpg"],
    "bounding_box_test": [
        "0005_c2s1_001101_02.jpg",
        "0005_c1s1_001126_04.jpg",
        "0008_c3s2_012478_01.jpg",
        "0000_c1s1_000151_01.jpg",
        "-1_c3s1_000026_01.jpg",
    ],
}

DUKE_IMAGES = {
    "bounding_box_train": ["0001_c2_f0046182.jpg", "0001_c5_f0051341.jpg", "0003_c8_f0044701.jpg"],
    "query": ["0011_c1_f0057700.jpg"],
    "bounding_box_test": ["0011_c7_f0094418.jpg", "0000_c4_f0070004.jpg", "-1_c2_f0061512.jpg"],
}


def write_image(path: Path, hw: tuple[int, int] = (16, 8), seed: int = 0) -> None:
    """A small valid image; the format follows the extension (.jpg, .png, .tif)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(*hw, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(path.suffix, pixels)
    assert ok
    path.write_bytes(buf.tobytes())


def skeleton(x: float = 4.0, y: float = 8.0, visible: int = 17) -> list[float]:
    """Flat 51-number PifPaf keypoints: ``visible`` points at (x, y + j), the rest zero."""
    flat: list[float] = []
    for j in range(17):
        flat += [x, y + j * 0.1, 0.9] if j < visible else [0.0, 0.0, 0.0]
    return flat


def pifpaf_entries(n: int = 2, with_target_flag: bool = True) -> list[dict[str, object]]:
    """A PifPaf-like list of skeleton dicts; the second one is the target when flagged."""
    entries: list[dict[str, object]] = []
    for i in range(n):
        entry: dict[str, object] = {
            "keypoints": skeleton(2.0 + i, 3.0 + i),
            "bbox": [0.0, 0.0, 8.0, 16.0],
            "score": 0.7,
            "category_id": 1,
        }
        if with_target_flag:
            entry["is_target"] = i == min(1, n - 1)
        entries.append(entry)
    return entries


def write_json(path: Path, obj: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def write_fields(path: Path, shape: Sequence[int] = (36, 8, 4)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.zeros(shape, dtype=np.float32))


def market_style_tree(
    root: Path,
    dirname: str,
    images: dict[str, list[str]],
    kp_dir: str,
    masks_suffix: str,
) -> Path:
    """``root/<dirname>/`` with images, external_annotation keypoints and masks for every image."""
    data = root / dirname
    for folder, names in images.items():
        for i, name in enumerate(names):
            write_image(data / folder / name, seed=i)
            write_json(
                data / "external_annotation" / kp_dir / folder / f"{name}_keypoints.json",
                pifpaf_entries(),
            )
            stem = name[: -len(".jpg")]
            write_fields(data / "masks" / MASKS_DIR / folder / f"{stem}{masks_suffix}")
    return data


# --- PoseTrack21 + Occluded-PoseTrack-ReID ------------------------------------------------

PT_FRAME_HW = (480, 640)
# (set, vid_id, video folder, frames); a frame lists (person_id, bbox ltwh, x, top, visible):
# the person's 17 keypoints stand in a column at x, rows top+5, top+11, …, the first
# `visible` of them visible.
PersonBox = tuple[int, list[float], float, float, int]
V22 = [0, 17, 5, 10, 3]
POSETRACK_VIDEOS: list[tuple[str, str, str, list[list[PersonBox]]]] = [
    (
        "train",
        "000001",
        "000001_bonn_train",
        [
            [
                (11, [100, 100, 60, 120], 130, 100, 17),
                (12, [300, 20, 150, 420], 375, 20, 17),
                (13, [-20, 200, 60, 100], 10, 200, 17),
            ]
        ]
        * 3,
    ),
    (
        "val",
        "000342",
        "000342_mpii_test",
        [
            [
                (21, [100, 100, 60, 120], 130, 100, 17),
                (22, [150, 100, 60, 120], 150, 100, V22[f]),
                (23, [160, 100, 60, 120], 170, 100, 2)
                if f == 0
                else (23, [400, 100, 60, 120], 430, 100, 17),
            ]
            for f in range(5)
        ],
    ),
    ("val", "000522", "000522_mpii_test", [[(21, [100, 100, 60, 120], 130, 100, 17)]]),
]
# Detections left out by the released sampling ("none"); and a decoy query label.
PT_NOT_SAMPLED = {("000001", 2, 13), ("000342", 4, 23)}


def pt_image_id(vid: str, frame: int) -> int:
    return int(f"1{vid}{frame:04d}")


def pt_det_id(vid: str, frame: int, person: int) -> int:
    return int(vid) * 10000 + frame * 100 + person


def pt_keypoints(x: float, top: float, visible: int) -> list[float]:
    flat: list[float] = []
    for j in range(17):
        flat += [x, top + 5 + 6 * j, 1] if j < visible else [0, 0, 0]
    return flat


def posetrack_tree(root: Path) -> Path:
    """``root/PoseTrack21`` with frames, per-video annotations, the released sampling files
    (train in pandas' default column orientation, val as records) and val parsing labels."""
    pt = root / "PoseTrack21"
    reid = pt / "occluded_posetrack_reid"
    sampling: dict[str, list[tuple[int, str]]] = {"train": [], "val": []}
    masks_rows: list[tuple[int, str | None]] = []
    for split, vid, folder, frames in POSETRACK_VIDEOS:
        images, annotations = [], []
        for f, people in enumerate(frames):
            file_name = f"images/{split}/{folder}/{f:06d}.jpg"
            write_image(pt / file_name, PT_FRAME_HW, seed=f)
            image_id = pt_image_id(vid, f)
            images.append(
                {
                    "is_labeled": True,
                    "nframes": len(frames),
                    "image_id": image_id,
                    "id": image_id,
                    "vid_id": vid,
                    "file_name": file_name,
                    "has_labeled_person": True,
                    "ignore_regions_x": [],
                    "ignore_regions_y": [],
                }
            )
            for track, (person, bbox, x, top, visible) in enumerate(people):
                det_id = pt_det_id(vid, f, person)
                annotations.append(
                    {
                        "bbox": bbox,
                        "bbox_head": [bbox[0], bbox[1], 10, 10],
                        "category_id": 1,
                        "id": det_id,
                        "image_id": image_id,
                        "keypoints": pt_keypoints(x, top, visible),
                        "person_id": person,
                        "track_id": track,
                    }
                )
                sampled = (vid, f, person) not in PT_NOT_SAMPLED
                label = split if split == "train" else ("query" if det_id == 3420021 else "gallery")
                sampling[split].append((det_id, label if sampled else "none"))
                if split == "val":
                    rel = f"{vid}/{person}_{vid}_{image_id}.npy"
                    masks_rows.append((det_id, rel if sampled else None))
                    if sampled:
                        write_fields(reid / "masks" / "val" / rel, (36, 96, 32))
        write_json(
            pt / "posetrack_data" / split / f"{folder}.json",
            {
                "images": images,
                "annotations": annotations,
                "categories": [{"id": 1, "name": "person"}],
            },
        )
    train = sampling["train"]
    write_json(
        reid / "train_dataset_sampling.json",
        {
            "id": {str(i): det for i, (det, _) in enumerate(train)},
            "split": {str(i): label for i, (_, label) in enumerate(train)},
        },
    )
    write_json(
        reid / "val_dataset_sampling.json",
        [{"id": det, "split": label} for det, label in sampling["val"]],
    )
    write_json(
        reid / "masks" / "anns" / "val_reid_masks_anns.json",
        {
            "id": {str(det): det for det, _ in masks_rows},
            "masks_path": {str(det): rel for det, rel in masks_rows},
        },
    )
    return pt
