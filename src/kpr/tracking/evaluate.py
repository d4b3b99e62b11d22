"""Tracking metrics through trackeval: HOTA, DetA, AssA, IDs, MOTA and IDF1.

trackeval's metric classes are driven directly (no dataset classes, no files): per frame the
ground-truth and predicted ids and a similarity matrix. The similarity is the box IoU for boxes,
or a keypoint similarity for poses: per (ground truth, prediction) pair, the joints within
0.5 x head size of each other (the PCKh rule of PoseTrack21's kit, head size = 0.6 x the head-box
diagonal) divided by the joints either one has (|G| + |P| - matched), an IoU of keypoint sets.
CLEAR (MOTA, IDs) and Identity (IDF1) count a match at similarity >= 0.5, HOTA sweeps it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from kpr.errors import DatasetError, KPRError
from kpr.tracking.matching import box_iou

Similarity = Literal["boxes", "keypoints"]
PCKH_THRESHOLD = 0.5
HEAD_SIZE_PER_BOX_HEIGHT = 0.1  # without a head box: 0.6 x the renderer's head diagonal / stature
METRIC_KEYS = ("HOTA", "DetA", "AssA", "IDs", "MOTA", "IDF1")


@dataclasses.dataclass(frozen=True, eq=False)
class FramePeople:
    """One frame of a sequence for evaluation.

    ids [n] int, boxes [n, 4] (x0, y0, x1, y1), keypoints [n, 17, 3] or None, head_sizes [n] or
    None (ground truth), and ``sources`` naming where each row came from (file:line or field).
    """

    ids: NDArray[np.int64]
    boxes: NDArray[np.float64]
    keypoints: NDArray[np.float64] | None = None
    head_sizes: NDArray[np.float64] | None = None
    sources: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class TrackingMetrics:
    """Scores as fractions, ``IDs`` (identity switches) a count."""

    HOTA: float
    DetA: float
    AssA: float
    IDs: int
    MOTA: float
    IDF1: float

    def as_dict(self) -> dict[str, float | int]:
        return dataclasses.asdict(self)


def check_unique_ids(frames: Mapping[object, FramePeople], name: str) -> None:
    """Refuse a sequence where an id appears twice in one frame."""
    for key, frame in frames.items():
        seen: dict[int, int] = {}
        for i, tid in enumerate(frame.ids.tolist()):
            if tid in seen:
                first, again = frame.sources[seen[tid]], frame.sources[i]
                raise DatasetError(
                    f"{again}: id {tid} appears twice in frame {key} of {name} (also {first})"
                )
            seen[tid] = i


def keypoint_similarity(
    gt: NDArray[np.float64], pred: NDArray[np.float64], head_sizes: NDArray[np.float64]
) -> NDArray[np.float64]:
    """[G, P] keypoint-set IoU of ground truth [G, 17, 3] and predictions [P, 17, 3].

    A joint is present where c > 0; a ground-truth joint is matched when the prediction has it
    within ``PCKH_THRESHOLD * head_sizes[g]`` pixels.
    """
    gv = gt[:, None, :, 2] > 0
    pv = pred[None, :, :, 2] > 0
    dist = np.linalg.norm(gt[:, None, :, :2] - pred[None, :, :, :2], axis=-1)
    close = dist <= PCKH_THRESHOLD * np.asarray(head_sizes, np.float64)[:, None, None]
    matched = (gv & pv & close).sum(-1)
    union = gv.sum(-1) + pv.sum(-1) - matched
    return np.divide(matched, union, out=np.zeros(matched.shape), where=union > 0)


def _similarity(gt: FramePeople, pred: FramePeople, kind: Similarity) -> NDArray[np.float64]:
    if not len(gt.ids) or not len(pred.ids):
        return np.zeros((len(gt.ids), len(pred.ids)))
    if kind == "boxes":
        return box_iou(gt.boxes, pred.boxes)
    if gt.keypoints is None or pred.keypoints is None:
        raise DatasetError(
            "keypoint evaluation needs keypoints in both ground truth and predictions"
        )
    heads = gt.head_sizes
    if heads is None:
        heads = HEAD_SIZE_PER_BOX_HEIGHT * (gt.boxes[:, 3] - gt.boxes[:, 1])
    return keypoint_similarity(gt.keypoints, pred.keypoints, heads)


def _empty() -> FramePeople:
    return FramePeople(np.zeros(0, np.int64), np.zeros((0, 4)))


def sequence_data(
    gt: Mapping[object, FramePeople],
    pred: Mapping[object, FramePeople],
    kind: Similarity,
    pred_name: str = "predictions",
) -> dict[str, object]:
    """trackeval's per-sequence input: ids relabelled 0..n-1, one similarity matrix per frame.

    Every frame of ``pred`` must be a frame of ``gt`` (``gt`` lists all frames, possibly empty).
    """
    for key, frame in pred.items():
        if key not in gt:
            where = frame.sources[0] if frame.sources else pred_name
            raise DatasetError(f"{where}: frame {key} is not in the ground truth")
    gt_ids = sorted({int(i) for f in gt.values() for i in f.ids})
    pr_ids = sorted({int(i) for f in pred.values() for i in f.ids})
    gt_map = {v: k for k, v in enumerate(gt_ids)}
    pr_map = {v: k for k, v in enumerate(pr_ids)}
    data: dict[str, object] = {"gt_ids": [], "tracker_ids": [], "similarity_scores": []}
    for key, g in gt.items():
        p = pred.get(key, _empty())
        data["gt_ids"].append(np.array([gt_map[int(i)] for i in g.ids], np.int64))  # type: ignore[union-attr]
        data["tracker_ids"].append(np.array([pr_map[int(i)] for i in p.ids], np.int64))  # type: ignore[union-attr]
        data["similarity_scores"].append(_similarity(g, p, kind))  # type: ignore[union-attr]
    data["num_timesteps"] = len(gt)
    data["num_gt_ids"] = len(gt_ids)
    data["num_tracker_ids"] = len(pr_ids)
    data["num_gt_dets"] = sum(len(f.ids) for f in gt.values())
    data["num_tracker_dets"] = sum(len(pred.get(k, _empty()).ids) for k in gt)
    return data


def evaluate_sequences(
    gt: Mapping[str, Mapping[object, FramePeople]],
    pred: Mapping[str, Mapping[object, FramePeople]],
    kind: Similarity = "boxes",
) -> TrackingMetrics:
    """Metrics over several sequences (trackeval's ``combine_sequences``); ``pred`` must hold
    every sequence of ``gt`` (an empty mapping is an empty prediction)."""
    try:
        from trackeval.metrics import CLEAR, HOTA, Identity
    except ImportError:
        raise KPRError(
            "tracking metrics need trackeval, which is not installed: "
            "pip install --no-deps trackeval==1.3.0 tabulate (docs/tracking.md)"
        ) from None

    quiet = {"PRINT_CONFIG": False}
    metrics = {"HOTA": HOTA(), "CLEAR": CLEAR(quiet), "Identity": Identity(quiet)}
    results: dict[str, dict[str, dict]] = {name: {} for name in metrics}
    for seq, gt_frames in gt.items():
        data = sequence_data(gt_frames, pred.get(seq, {}), kind, seq)
        for name, metric in metrics.items():
            with contextlib.redirect_stdout(io.StringIO()):
                results[name][seq] = metric.eval_sequence(data)
    combined = {name: metrics[name].combine_sequences(results[name]) for name in metrics}
    hota, clear, ident = combined["HOTA"], combined["CLEAR"], combined["Identity"]
    return TrackingMetrics(
        HOTA=float(np.mean(hota["HOTA"])),
        DetA=float(np.mean(hota["DetA"])),
        AssA=float(np.mean(hota["AssA"])),
        IDs=int(clear["IDSW"]),
        MOTA=float(clear["MOTA"]),
        IDF1=float(ident["IDF1"]),
    )


def format_metrics(rows: Sequence[tuple[str, TrackingMetrics]]) -> str:
    """A plain-text table, one row per (label, metrics); scores in percent."""
    header = f"{'':<12}" + "".join(f"{k:>8}" for k in METRIC_KEYS)
    lines = [header]
    for label, m in rows:
        cells = [
            f"{100 * getattr(m, k):8.1f}" if k != "IDs" else f"{m.IDs:8d}" for k in METRIC_KEYS
        ]
        lines.append(f"{label:<12}" + "".join(cells))
    return "\n".join(lines)
