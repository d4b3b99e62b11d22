"""KPRTrack on synthetic crossing-people videos: keypoint prompts vs the empty prompt, and speed.

For each seed a synthetic video is rendered (``kpr synth-video``) and tracked twice with the same
weights and given ground-truth detections: with keypoint prompts and with the empty prompt (the
paper's "w/o prompt" row). Reported: HOTA, AssA and identity switches per seed, their mean and
seed-to-seed standard deviation, and the paired difference (prompts − no prompts). Then the
throughput: frames/s of the whole tracker for the demo model, and people/s of the real Swin-B
config (random weights) on a few frames.

    python benchmarks/tracking.py                                  # demo checkpoint, seeds 0-2
    python benchmarks/tracking.py --seeds 0 1 2 3 4 --frames 300 --checkpoint DIR
    python benchmarks/tracking.py --gate 0.4                       # the gate study's best
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from machine import machine_facts  # noqa: E402

from kpr.checkpoint import create_model
from kpr.predictor import KPRPredictor
from kpr.synthetic.video import VideoConfig, generate_video
from kpr.tracking.config import TrackerConfig
from kpr.tracking.evaluate import evaluate_sequences
from kpr.tracking.outputs import TrackOutputs
from kpr.tracking.run import run_tracking
from kpr.tracking.sequences import posetrack_sequence
from kpr.tracking.sources import open_input
from kpr.tracking.tracker import KPRTracker

DEMO_CHECKPOINT = Path("runs/demo/kpr/checkpoints/best")
KEYS = ("HOTA", "AssA", "IDs")


def track_once(
    predictor: KPRPredictor, annotations: Path, out: Path, prompts: bool, gate: float
) -> tuple[dict, float]:
    tracker = KPRTracker(predictor, TrackerConfig(prompts=prompts, gate=gate))
    outputs = TrackOutputs(out, annotations.stem, frames=False, overwrite=True)
    summary = run_tracking(open_input(annotations), tracker, outputs, progress=False)
    gt = {"v": posetrack_sequence(annotations, True)}
    pred = {"v": posetrack_sequence(out / "tracks.json", False)}
    return evaluate_sequences(gt, pred, "keypoints").as_dict(), summary.fps


def swin_b_people_per_s(annotations: Path, frames: int) -> tuple[float, int]:
    """People/s of the tracker's embedding step with the real Swin-B config (random weights)."""
    torch.manual_seed(0)
    predictor = KPRPredictor(create_model("kpr_solider_swin_base_384x128"), device="cpu")
    tracker = KPRTracker(predictor, TrackerConfig())
    source = open_input(annotations)
    batches = [next(source.frames) for _ in range(frames + 1)]
    tracker.embed_people(batches[0].image, batches[0].people)  # warm-up
    start = time.perf_counter()
    people = 0
    for frame in batches[1:]:
        tracker.embed_people(frame.image, frame.people)
        people += len(frame.people)
    return people / (time.perf_counter() - start), people


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkpoint", type=Path, default=DEMO_CHECKPOINT)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--swin-frames", type=int, default=3)
    parser.add_argument("--gate", type=float, default=TrackerConfig().gate, help="matching gate")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = parser.parse_args()
    print(machine_facts(), flush=True)
    print(f"gate {args.gate}", flush=True)
    torch.set_num_threads(2)
    predictor = KPRPredictor.from_pretrained(args.checkpoint, device="cpu")
    work = Path(tempfile.mkdtemp(prefix="kpr-track-bench-"))
    per_seed: dict[str, list[dict]] = {"prompts": [], "no_prompts": []}
    fps: dict[str, list[float]] = {"prompts": [], "no_prompts": []}
    annotations = None
    print(f"{'seed':>4}  {'mode':<10}" + "".join(f"{k:>8}" for k in KEYS) + f"{'frames/s':>10}")
    for seed in args.seeds:
        video = generate_video(
            work / "videos", VideoConfig(seed=seed, num_frames=args.frames), progress=False
        )
        annotations = video.annotations
        for mode, prompts in (("prompts", True), ("no_prompts", False)):
            metrics, speed = track_once(
                predictor, video.annotations, work / mode / str(seed), prompts, args.gate
            )
            per_seed[mode].append(metrics)
            fps[mode].append(speed)
            cells = "".join(
                f"{100 * metrics[k]:8.1f}" if k != "IDs" else f"{metrics[k]:8d}" for k in KEYS
            )
            print(f"{seed:>4}  {mode:<10}{cells}{speed:10.2f}", flush=True)
    summary: dict[str, dict] = {}
    for key in KEYS:
        a = np.array([m[key] for m in per_seed["prompts"]], float)
        b = np.array([m[key] for m in per_seed["no_prompts"]], float)
        scale = 1 if key == "IDs" else 100
        summary[key] = {
            "prompts_mean": scale * a.mean(),
            "prompts_std": scale * a.std(ddof=1) if len(a) > 1 else 0.0,
            "no_prompts_mean": scale * b.mean(),
            "no_prompts_std": scale * b.std(ddof=1) if len(b) > 1 else 0.0,
            "diff_mean": scale * (a - b).mean(),
            "diff_std": scale * (a - b).std(ddof=1) if len(a) > 1 else 0.0,
        }
    print("\nmean ± std over seeds (HOTA, AssA in %, IDs a count)")
    for key, s in summary.items():
        print(
            f"{key:<5} prompts {s['prompts_mean']:7.1f} ± {s['prompts_std']:5.1f}   "
            f"no prompts {s['no_prompts_mean']:7.1f} ± {s['no_prompts_std']:5.1f}   "
            f"difference {s['diff_mean']:+7.1f} ± {s['diff_std']:5.1f}"
        )
    assert annotations is not None
    swin_rate, swin_people = swin_b_people_per_s(annotations, args.swin_frames)
    speed = {mode: float(np.mean(v)) for mode, v in fps.items()}
    print(
        f"\ndemo model: {speed['prompts']:.2f} frames/s with prompts, "
        f"{speed['no_prompts']:.2f} without"
    )
    print(f"Swin-B 384x128 (random weights): {swin_rate:.2f} people/s over {swin_people} people")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "seeds": args.seeds,
                    "frames": args.frames,
                    "gate": args.gate,
                    "per_seed": per_seed,
                    "summary": summary,
                    "frames_per_s": speed,
                    "swin_b_people_per_s": swin_rate,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
