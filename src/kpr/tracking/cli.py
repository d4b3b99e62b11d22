"""``kpr track``, ``kpr track-eval``, ``kpr track-demo`` (and ``kpr synth-video``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from kpr.errors import KPRError


def add_tracking_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register the tracking verbs and ``synth-video`` on an argparse subcommand group."""
    from kpr.cli import _add_model_options
    from kpr.synthetic.cli import add_synth_video_parser

    track = subparsers.add_parser(
        "track",
        help="track people in a video with KPR (KPRTrack)",
        description=(
            "Online, appearance-only multi-person tracking: each detection is embedded with its "
            "keypoints as prompt (others' keypoints in its box as negatives) and matched to tracks "
            "by the Hungarian algorithm on the part distance, gated at --gate. INPUT is a "
            "PoseTrack21 video JSON (given detections), or a video file / frame folder with "
            "--detections (MOT text, keypoints optional) or without (pose front end). Writes "
            "tracks.txt (MOT), tracks.json (PoseTrack21) and annotated frames."
        ),
    )
    track.add_argument(
        "input", metavar="INPUT", help="PoseTrack21 JSON, video file or frame folder"
    )
    track.add_argument("--out", type=Path, required=True, help="output directory")
    track.add_argument(
        "--detections", help="MOT detection file (optionally + 17 keypoints per line)"
    )
    track.add_argument("--no-prompts", action="store_true", help="embed with the empty prompt")
    track.add_argument("--frames-root", help="directory the JSON's file_names are relative to")
    track.add_argument("--estimator", default="mediapipe", help="pose estimator without detections")
    track.add_argument("--detector", default=None, help="person detector before the estimator")
    track.add_argument("--gate", type=float, default=0.2, help="match only below this distance")
    track.add_argument("--memory", type=float, default=0.9, help="per-part EMA weight of the past")
    track.add_argument("--max-age", type=int, default=30, help="frames a track survives unmatched")
    track.add_argument("--min-confidence", type=float, default=0.0, help="ignore weaker detections")
    track.add_argument("--iou-gate", type=float, default=None, help="optional box IoU gate (off)")
    track.add_argument("--no-frames", action="store_true", help="do not write annotated frames")
    track.add_argument("--video", action="store_true", help="also write annotated.mp4")
    track.add_argument("--fps", type=float, default=25.0, help="frame rate of annotated.mp4")
    track.add_argument("--overwrite", action="store_true", help="replace a previous run in --out")
    _add_model_options(track)
    track.set_defaults(func=run_track)

    evaluate = subparsers.add_parser(
        "track-eval",
        help="score tracks against ground truth (HOTA, DetA, AssA, IDs, MOTA, IDF1)",
        description=(
            "MOT text files (frame,id,x,y,w,h,conf,…) are scored on box IoU; PoseTrack21 JSONs "
            "(files or directories paired by name) on keypoints, and on boxes too."
        ),
    )
    evaluate.add_argument("--gt", required=True, help="ground truth (MOT .txt, JSON or directory)")
    evaluate.add_argument("--pred", required=True, help="predictions, same kind as --gt")
    evaluate.add_argument("--json", type=Path, help="write the scores to this JSON file")
    evaluate.set_defaults(func=run_track_eval)

    demo = subparsers.add_parser(
        "track-demo",
        help="track synthetic crossing-people videos with and without prompts",
        description=(
            "Synthetic videos tracked with and without keypoint prompts by the demo's KPR "
            "checkpoint (runs/demo/kpr/checkpoints/best, trained when absent): a results table and "
            "an annotated clip of the hardest crossing."
        ),
    )
    demo.add_argument("--seed", type=int, default=0, help="seed of the first video")
    demo.add_argument(
        "--videos", type=int, default=2, help="number of videos (seeds seed, seed+1…)"
    )
    demo.add_argument("--frames", type=int, default=300, help="frames per video")
    demo.add_argument("--checkpoint", default=None, help="KPR checkpoint (default: the demo's)")
    demo.add_argument("--out", type=Path, default=Path("runs/track-demo"), help="output directory")
    demo.add_argument("--device", default="cpu")
    demo.set_defaults(func=run_track_demo_cmd)

    add_synth_video_parser(subparsers)


def run_track(args: argparse.Namespace) -> int:
    from kpr.predictor import KPRPredictor
    from kpr.tracking.config import TrackerConfig
    from kpr.tracking.outputs import TrackOutputs
    from kpr.tracking.run import run_tracking
    from kpr.tracking.sources import open_input
    from kpr.tracking.tracker import KPRTracker

    config = TrackerConfig(
        gate=args.gate,
        memory=args.memory,
        max_age=args.max_age,
        min_confidence=args.min_confidence,
        iou_gate=args.iou_gate,
        prompts=not args.no_prompts,
    )
    source = open_input(args.input, args.detections, args.frames_root)
    predictor = KPRPredictor.from_pretrained(
        args.checkpoint,
        device=args.device,
        precision=args.precision,
        backend=args.backend,
        onnx_file=args.onnx,
    )
    tracker = KPRTracker(predictor, config, batch_size=args.batch_size)
    outputs = TrackOutputs(
        args.out,
        source.name,
        frames=not args.no_frames,
        video=args.video,
        fps=args.fps,
        overwrite=args.overwrite,
    )
    summary = run_tracking(
        source, tracker, outputs, estimator=args.estimator, detector=args.detector
    )
    ignored = (
        f", {summary.ignored} detections below --min-confidence {args.min_confidence:g} ignored"
        if summary.ignored
        else ""
    )
    print(
        f"{summary.frames} frames, {summary.detections} detections, {summary.tracks} tracks "
        f"({summary.fps:.1f} frames/s){ignored} -> {args.out}"
    )
    return 0


def run_track_eval(args: argparse.Namespace) -> int:
    from kpr.io_utils import write_text_atomic
    from kpr.tracking.evaluate import evaluate_sequences, format_metrics
    from kpr.tracking.sequences import load_sequences

    gt, pred, kind = load_sequences(args.gt, args.pred)
    main = evaluate_sequences(gt, pred, kind)
    rows = [(kind, main)]
    report: dict[str, object] = {**main.as_dict(), "similarity": kind}
    if kind == "keypoints":
        boxes = evaluate_sequences(gt, pred, "boxes")
        rows.append(("boxes", boxes))
        report["boxes"] = boxes.as_dict()
    print(format_metrics(rows))
    if args.json is not None:
        if args.json.is_dir():
            raise KPRError(f"--json {args.json}: is a directory; expected a file path")
        write_text_atomic(args.json, json.dumps(report, indent=2))
        print(f"scores -> {args.json}")
    return 0


def run_track_demo_cmd(args: argparse.Namespace) -> int:
    from kpr.tracking.demo import run_track_demo

    if args.videos < 1 or args.frames < 1:
        raise KPRError("--videos and --frames must be >= 1")
    run_track_demo(
        args.out,
        seed=args.seed,
        num_videos=args.videos,
        checkpoint=args.checkpoint,
        video_overrides={"num_frames": args.frames},
        device=args.device,
    )
    return 0
