"""``kpr track-demo``: prompts vs no prompts on synthetic crossing-people videos.

Renders a few synthetic videos, tracks each with the demo's KPR checkpoint twice (keypoint
prompts / empty prompts, same weights, given ground-truth detections), scores both with HOTA and
writes an annotated clip of the hardest crossing, both runs stacked (top: prompts).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from kpr.imaging import read_rgb
from kpr.io_utils import write_bytes_atomic, write_text_atomic
from kpr.predictor import KPRPredictor
from kpr.synthetic.video import VideoConfig, generate_video
from kpr.tracking.config import TrackerConfig
from kpr.tracking.drawing import draw_tracks
from kpr.tracking.evaluate import TrackingMetrics, evaluate_sequences, format_metrics
from kpr.tracking.matching import box_iou
from kpr.tracking.outputs import TrackOutputs, write_video
from kpr.tracking.posetrack import PoseTrackFrame, read_posetrack
from kpr.tracking.run import run_tracking
from kpr.tracking.sequences import posetrack_sequence
from kpr.tracking.sources import open_input
from kpr.tracking.tracker import KPRTracker

DEMO_RUN = Path("runs/demo")
MODES = (("prompts", True), ("no_prompts", False))
CLIP_HALF_LENGTH = 25


def demo_checkpoint(demo_dir: str | Path = DEMO_RUN, seed: int = 0, progress: bool = True) -> Path:
    """The demo's KPR checkpoint (``<demo_dir>/kpr/checkpoints/best``); trained like ``kpr demo``
    trains it when absent (the prompt-trained model only, ~5–15 min on 2 CPU cores)."""
    from kpr.engine.config import load_train_config
    from kpr.engine.demo import demo_dataset_config, ensure_dataset
    from kpr.engine.trainer import Trainer
    from kpr.recipes import resolve_recipe

    run_dir = Path(demo_dir) / "kpr"
    for name in ("best", "last"):
        if (run_dir / "checkpoints" / name).exists():
            return run_dir / "checkpoints" / name
    data = Path(demo_dir) / "data"
    ensure_dataset(data, demo_dataset_config(seed), progress)
    config = load_train_config(
        resolve_recipe("synthetic_kpr"),
        [f"dataset.root={data}", f"output_dir={run_dir}", f"seed={seed}"],
    )
    result = Trainer(config, device="cpu", progress=progress).fit()
    return result.best_checkpoint or result.last_checkpoint


def hardest_crossing(frames: Sequence[PoseTrackFrame]) -> int:
    """Index of the frame whose two most overlapping ground-truth boxes overlap most (IoU)."""
    best, where = -1.0, 0
    for i, frame in enumerate(frames):
        if len(frame.annotations) < 2:
            continue
        iou = box_iou([a.box for a in frame.annotations], [a.box for a in frame.annotations])
        np.fill_diagonal(iou, 0.0)
        if iou.max() > best:
            best, where = float(iou.max()), i
    return where


def write_clip(
    out: Path,
    root: Path,
    runs: Sequence[tuple[str, Sequence[PoseTrackFrame]]],
    centre: int,
    fps: float = 12.0,
) -> Path:
    """Frames ``centre ± CLIP_HALF_LENGTH``, one band per run (label, tracked frames) stacked
    vertically, as JPEGs in ``out/`` and ``out.mp4``; returns the video path."""
    first = max(0, centre - CLIP_HALF_LENGTH)
    last = min(len(runs[0][1]), centre + CLIP_HALF_LENGTH + 1)
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(first, last):
        image = read_rgb(root / runs[0][1][i].file_name)
        bands = []
        for label, frames in runs:
            anns = frames[i].annotations
            bands.append(
                draw_tracks(
                    image,
                    [a.box for a in anns],
                    [int(a.track_id or 0) for a in anns],
                    [a.keypoints for a in anns],
                    label=f"{label}  frame {i}",
                )
            )
        ok, jpg = cv2.imencode(
            ".jpg", np.concatenate(bands)[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 92]
        )
        path = out / f"{i:06d}.jpg"
        write_bytes_atomic(path, jpg.tobytes())
        files.append(path)
    return write_video(out.with_suffix(".mp4"), files, fps)


def run_track_demo(
    out: str | Path = "runs/track-demo",
    seed: int = 0,
    num_videos: int = 2,
    checkpoint: str | Path | None = None,
    video_overrides: dict[str, Any] | None = None,
    device: str | None = "cpu",
    progress: bool = True,
) -> dict[str, Any]:
    """Run the demo; writes ``<out>/results.json`` and ``<out>/hardest_crossing.mp4``."""
    out = Path(out)
    checkpoint = Path(checkpoint) if checkpoint else demo_checkpoint(progress=progress)
    predictor = KPRPredictor.from_pretrained(checkpoint, device=device)
    videos = []
    for s in range(seed, seed + num_videos):
        config = VideoConfig(seed=s, **(video_overrides or {}))
        videos.append(generate_video(out / "videos", config, progress=progress, overwrite=True))
    gt = {v.config.video_name: posetrack_sequence(v.annotations, True) for v in videos}
    results: dict[str, Any] = {
        "checkpoint": str(checkpoint),
        "seeds": [v.config.seed for v in videos],
    }
    rows: list[tuple[str, TrackingMetrics]] = []
    for mode, prompts in MODES:
        preds, fps = {}, []
        for v in videos:
            run_dir = out / mode / v.config.video_name
            tracker = KPRTracker(predictor, TrackerConfig(prompts=prompts))
            outputs = TrackOutputs(run_dir, v.config.video_name, frames=False, overwrite=True)
            summary = run_tracking(open_input(v.annotations), tracker, outputs, progress=progress)
            fps.append(summary.fps)
            preds[v.config.video_name] = posetrack_sequence(run_dir / "tracks.json", False)
        metrics = evaluate_sequences(gt, preds, "keypoints")
        rows.append((mode, metrics))
        results[mode] = {**metrics.as_dict(), "frames_per_s": round(float(np.mean(fps)), 2)}
    first = videos[0]
    gt_frames = read_posetrack(first.annotations)
    centre = hardest_crossing(gt_frames)
    runs = [
        (
            mode.replace("_", " "),
            read_posetrack(out / mode / first.config.video_name / "tracks.json"),
        )
        for mode, _ in MODES
    ]
    clip = write_clip(out / "hardest_crossing", first.annotations.parent.parent, runs, centre)
    results["hardest_crossing"] = {
        "video": first.config.video_name,
        "frame": centre,
        "clip": str(clip),
    }
    write_text_atomic(out / "results.json", json.dumps(results, indent=2))
    print(format_metrics(rows))
    print(f"hardest crossing: {first.config.video_name} frame {centre} -> {clip}")
    print(f"results -> {out / 'results.json'}")
    return results
