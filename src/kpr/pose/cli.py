"""``kpr annotate``: crops → official keypoint files with a pose estimator and the target rule."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_annotate_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``annotate`` on an argparse subcommand group; sets ``args.func = run_annotate``."""
    parser = subparsers.add_parser(
        "annotate",
        help="write keypoint files for person crops with a pose estimator",
        description=(
            "Run a pose estimator on each crop and write one official keypoint JSON per crop into "
            "KP_DIR: the person whose head is closest to the top centre is the target, the others "
            "are negatives; a crop where nobody is found gets []. Crops whose file exists are "
            "skipped, so an interrupted run can be resumed."
        ),
    )
    parser.add_argument("crops", nargs="+", metavar="CROPS", help="image files and/or directories")
    parser.add_argument(
        "--out", type=Path, required=True, metavar="KP_DIR", help="output directory"
    )
    parser.add_argument(
        "--estimator",
        default="mediapipe",
        metavar="NAME",
        help="registered pose estimator (default mediapipe)",
    )
    parser.add_argument(
        "--naming",
        choices=("stem", "official"),
        default="stem",
        help="file names: <stem>.json (default) or the official <name>_keypoints.json",
    )
    parser.add_argument(
        "--preview",
        action="store_true",
        help="also write KP_DIR/preview.png, a contact sheet of crops with their skeletons",
    )
    parser.add_argument("--overwrite", action="store_true", help="redo crops whose file exists")
    parser.add_argument(
        "--on-error",
        choices=("stop", "skip"),
        default="stop",
        help="on a bad crop: stop (default) or list it and go on (exit status 1 at the end)",
    )
    parser.set_defaults(func=run_annotate)
    return parser


def run_annotate(args: argparse.Namespace) -> int:
    """Annotate the crops and print the summary. Returns 1 if crops failed (``--on-error skip``)."""
    from kpr.cli import collect_images
    from kpr.pose import annotate_crops, create_estimator
    from kpr.pose.preview import preview_sheet

    images = collect_images(args.crops)
    estimator = create_estimator(args.estimator)
    summary = annotate_crops(
        images,
        args.out,
        estimator,
        naming=args.naming,
        overwrite=args.overwrite,
        on_error=args.on_error,
        progress=True,
    )
    for line in summary.lines():
        print(line)
    print(f"keypoint files -> {args.out}")
    records = [*summary.annotated, *summary.already_done]
    if args.preview and records:
        print(f"preview -> {preview_sheet(records, args.out / 'preview.png')}")
    return 1 if summary.failed else 0
