"""Ground truth and predictions on disk → per-frame people for :mod:`kpr.tracking.evaluate`.

MOT text files hold one sequence; a PoseTrack21 JSON holds one video, and a directory of them
several (paired by file name). Ground truth is checked for duplicate ids in a frame, predictions
for frames the ground truth lacks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kpr.errors import DatasetError
from kpr.tracking.evaluate import FramePeople, Similarity, check_unique_ids
from kpr.tracking.mot import read_mot
from kpr.tracking.posetrack import read_posetrack

Sequences = dict[str, dict[object, FramePeople]]


def mot_sequence(path: str | Path, ground_truth: bool) -> dict[object, FramePeople]:
    """Frames of a MOT file. Ground truth covers every frame from 1 to its last (absent = empty),
    since MOT files do not list frames without people."""
    rows = read_mot(path, ground_truth=ground_truth)
    frames: dict[object, FramePeople] = {}
    for frame, items in rows.items():
        frames[frame] = FramePeople(
            ids=np.array([r.track_id for r in items], np.int64),
            boxes=np.array([r.box for r in items], np.float64).reshape(-1, 4),
            sources=tuple(f"{path}:{r.line}" for r in items),
        )
    if ground_truth and frames:
        last = max(rows)
        empty = FramePeople(np.zeros(0, np.int64), np.zeros((0, 4)))
        frames = {f: frames.get(f, empty) for f in range(1, last + 1)}
    name = "ground truth" if ground_truth else "predictions"
    check_unique_ids(frames, f"{name} {path}")
    return frames


def posetrack_sequence(path: str | Path, ground_truth: bool) -> dict[object, FramePeople]:
    """Frames of a PoseTrack21 video JSON keyed by image id, with keypoints and head sizes."""
    frames: dict[object, FramePeople] = {}
    for frame in read_posetrack(path):
        anns = frame.annotations
        for a in anns:
            if a.track_id is None:
                raise DatasetError(f"{path}: {a.field}: missing track_id")
        heads = None
        if ground_truth and anns and all(a.head_box is not None for a in anns):
            heads = np.array([0.6 * float(np.hypot(a.head_box[2], a.head_box[3])) for a in anns])  # type: ignore[index]
        frames[frame.image_id] = FramePeople(
            ids=np.array([a.track_id for a in anns], np.int64),
            boxes=np.array([a.box for a in anns], np.float64).reshape(-1, 4),
            keypoints=np.array([a.keypoints for a in anns]).reshape(-1, 17, 3),
            head_sizes=heads,
            sources=tuple(f"{path}: {a.field}" for a in anns),
        )
    name = "ground truth" if ground_truth else "predictions"
    check_unique_ids(frames, f"{name} {path}")
    return frames


def _json_files(path: Path, what: str) -> dict[str, Path]:
    if path.is_dir():
        files = {p.name: p for p in sorted(path.glob("*.json"))}
        if not files:
            raise DatasetError(f"{what} {path}: no PoseTrack21 .json files in this directory")
        return files
    if not path.is_file():
        raise DatasetError(f"{what} {path}: no such file or directory")
    return {path.name: path}


def load_sequences(gt: str | Path, pred: str | Path) -> tuple[Sequences, Sequences, Similarity]:
    """Read a ground truth and a prediction (MOT .txt files, or PoseTrack21 JSON files or
    directories) and say which similarity scores them (keypoints for PoseTrack21)."""
    gt, pred = Path(gt), Path(pred)
    if gt.suffix == ".txt" or pred.suffix == ".txt":
        if not (gt.suffix == ".txt" and pred.suffix == ".txt"):
            raise DatasetError(
                f"--gt {gt} and --pred {pred}: give two MOT .txt files or PoseTrack21 JSONs"
            )
        return {gt.stem: mot_sequence(gt, True)}, {gt.stem: mot_sequence(pred, False)}, "boxes"
    gt_files = _json_files(gt, "--gt")
    pred_files = _json_files(pred, "--pred")
    if len(gt_files) == 1 and len(pred_files) == 1 and gt.is_file() and pred.is_file():
        pred_files = {next(iter(gt_files)): next(iter(pred_files.values()))}
    for name, path in pred_files.items():
        if name not in gt_files:
            raise DatasetError(f"{path}: no ground truth {name} in {gt}")
    for name in gt_files:
        if name not in pred_files:
            raise DatasetError(f"{gt_files[name]}: no prediction {name} in {pred}")
    gt_seqs = {name: posetrack_sequence(p, True) for name, p in gt_files.items()}
    pred_seqs = {name: posetrack_sequence(p, False) for name, p in pred_files.items()}
    return gt_seqs, pred_seqs, "keypoints"
