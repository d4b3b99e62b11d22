"""``kpr synth``: write the synthetic multi-person-occlusion dataset and a contact sheet."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from kpr.configuration import apply_overrides
from kpr.errors import ConfigError
from kpr.synthetic.contact_sheet import contact_sheet
from kpr.synthetic.generator import SyntheticConfig, generate_synthetic_dataset


def config_from_args(args: argparse.Namespace) -> SyntheticConfig:
    """The ``SyntheticConfig`` for parsed ``kpr synth`` arguments: ``key=value`` overrides of its
    fields, with ``--seed``/``--num-images`` as shorthands for ``seed=``/``num_images=``."""
    given = {item.partition("=")[0] for item in args.overrides}
    shorthands = (("seed", args.seed), ("num_images", args.num_images))
    flags = [f"{key}={flag}" for key, flag in shorthands if flag is not None]
    for item in flags:
        key = item.partition("=")[0]
        if key in given:
            raise ConfigError(f"synth setting {key!r} given both as a flag and as {key}=...")
    return apply_overrides(SyntheticConfig(), [*args.overrides, *flags])


def add_synth_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``synth`` on an argparse subcommand group; ``args.func`` is set to ``run_synth``."""
    names = ", ".join(f.name for f in dataclasses.fields(SyntheticConfig))
    parser = subparsers.add_parser(
        "synth",
        help="write the synthetic multi-person-occlusion dataset",
        description=(
            "Render the built-in synthetic person re-identification dataset (kpr-folder format) "
            "and a contact sheet of sample crops with their keypoint prompts."
        ),
        epilog=f"KEY=VALUE settings: {names}",
    )
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    parser.add_argument("--num-images", type=int, default=None, help="total number of images")
    parser.add_argument("--workers", type=int, default=2, help="rendering processes (default 2)")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing synthetic dataset in --out"
    )
    parser.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE", help="SyntheticConfig fields, e.g. team_size=5"
    )
    parser.set_defaults(func=run_synth)
    return parser


def run_synth(args: argparse.Namespace) -> int:
    """Generate the dataset and ``contact_sheet.png``; print a per-split table. Returns 0."""
    config = config_from_args(args)
    summary = generate_synthetic_dataset(
        args.out, config, workers=args.workers, progress=True, overwrite=args.overwrite
    )
    sheet = Path(args.out) / "contact_sheet.png"
    contact_sheet(args.out, sheet, seed=config.seed)
    print(summary.format_table())
    print(f"{summary.num_images} images in {summary.seconds:.1f} s -> {summary.out_dir}")
    print(f"contact sheet: {sheet}")
    return 0


def add_synth_video_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``synth-video``; ``args.func`` is set to ``run_synth_video``."""
    from kpr.synthetic.video import VideoConfig

    names = ", ".join(f.name for f in dataclasses.fields(VideoConfig))
    parser = subparsers.add_parser(
        "synth-video",
        help="write a synthetic crossing-people video with PoseTrack21 ground truth",
        description=(
            "Render people of the synthetic benchmark walking, crossing and occluding each other "
            "in front of a static camera, with ground-truth boxes, keypoints, ids and visibility "
            "in the PoseTrack21 layout (images/<video>/, posetrack_data/<video>.json)."
        ),
        epilog=f"KEY=VALUE settings: {names}",
    )
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    parser.add_argument("--overwrite", action="store_true", help="replace this seed's video")
    parser.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE", help="VideoConfig fields, e.g. num_frames=200"
    )
    parser.set_defaults(func=run_synth_video)
    return parser


def run_synth_video(args: argparse.Namespace) -> int:
    """Render the video; print where its frames and annotations are. Returns 0."""
    from kpr.synthetic.video import VideoConfig, generate_video

    overrides = list(args.overrides)
    if args.seed is not None:
        if any(item.partition("=")[0] == "seed" for item in overrides):
            raise ConfigError("synth-video setting 'seed' given both as a flag and as seed=...")
        overrides.append(f"seed={args.seed}")
    config = apply_overrides(VideoConfig(), overrides)
    video = generate_video(args.out, config, overwrite=args.overwrite)
    print(
        f"{video.num_frames} frames, {config.num_people} people, {video.num_annotations} "
        f"annotations -> {video.frames_dir}"
    )
    print(f"ground truth: {video.annotations}")
    return 0
