"""The ``kpr`` command line: ``kpr <verb> --checkpoint C … [key=value …]``.

Every verb that runs a model takes ``--checkpoint``, ``--device``, ``--precision`` and
``--batch-size``; ``--out`` is a file for ``embed``/``compare`` and a directory for the others.
Nothing existing is replaced without ``--overwrite``. Failures are one line on stderr and a
non-zero exit (2 for bad input, 1 for anything else, 130 when interrupted).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from kpr.allocator import tune_cpu_allocator
from kpr.errors import KPRError
from kpr.interrupts import EXIT_CODE as TERMINATED_EXIT_CODE
from kpr.interrupts import Terminated, sigterm_unwinds

log = logging.getLogger("kpr")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def collect_images(items: Sequence[str]) -> list[Path]:
    """Image files from a mix of files and directories (directories: sorted, non-recursive)."""
    paths: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
            if not found:
                raise KPRError(
                    f"{path}: no images ({', '.join(IMAGE_EXTENSIONS)}) in this directory"
                )
            paths.extend(found)
        elif path.is_file():
            paths.append(path)
        else:
            raise KPRError(f"{path}: no such image file or directory")
    return paths


def skip_note(verb: str, item: object, reason: str) -> str:
    """``kpr <verb>: skipped <item>: <reason>``, without naming the item twice when the reason
    already starts with it."""
    name = str(item)
    return f"kpr {verb}: skipped {reason if reason.startswith(name) else f'{name}: {reason}'}"


def keypoint_file_for(image: Path, directory: Path | None) -> Path | None:
    """The keypoint file of ``image`` in ``directory``: ``<stem>.json``, or the official namings
    ``<name>_keypoints.json`` / ``<name>.predictions.json``; ``None`` if there is none."""
    if directory is None:
        return None
    for candidate in (
        f"{image.stem}.json",
        f"{image.name}_keypoints.json",
        f"{image.name}.predictions.json",
    ):
        if (directory / candidate).is_file():
            return directory / candidate
    return None


def mask_file_for(image: Path, directory: Path | None) -> Path | None:
    """The mask file of ``image`` in ``directory``: ``<stem>.png``; ``None`` if there is none."""
    if directory is None:
        return None
    candidate = directory / f"{image.stem}.png"
    return candidate if candidate.is_file() else None


def _masks_for(images: list[Path], directory: str | None) -> list[Path | None] | None:
    """Per image its mask file in ``--masks`` (None without the option)."""
    if directory is None:
        return None
    mask_dir = Path(directory)
    if not mask_dir.is_dir():
        raise KPRError(f"--masks {mask_dir}: masks directory not found")
    files = [mask_file_for(image, mask_dir) for image in images]
    missing = sum(f is None for f in files)
    if missing:
        log.warning(
            "%d of %d images have no mask file in %s: embedded without prompt",
            missing,
            len(files),
            mask_dir,
        )
    return files


def _keypoints_for(images: list[Path], directory: str | None) -> list[Path | None]:
    kp_dir = Path(directory) if directory and directory != "auto" else None
    if kp_dir is not None and not kp_dir.is_dir():
        raise KPRError(f"--keypoints {kp_dir}: keypoints directory not found")
    files = [keypoint_file_for(image, kp_dir) for image in images]
    missing = sum(f is None for f in files)
    if kp_dir is not None and missing:
        log.warning(
            "%d of %d images have no keypoint file in %s: embedded without prompt",
            missing,
            len(files),
            kp_dir,
        )
    return files


def estimator_name(args: argparse.Namespace) -> str | None:
    """The pose estimator for crops without a keypoint file: ``--estimator``, or MediaPipe for
    ``--keypoints auto``; None = no estimation."""
    return args.estimator or ("mediapipe" if args.keypoints == "auto" else None)


def _estimate_missing(images: list[Path], files: list, args: argparse.Namespace) -> list:
    """Fill the crops without a keypoint file with the pose estimator's target and negatives
    (``--keypoints auto``, or ``--estimator NAME`` next to a keypoints directory)."""
    name = estimator_name(args)
    if name is None:
        return files
    from tqdm.auto import tqdm

    from kpr.pose import auto_skeletons, create_estimator

    estimator = create_estimator(name)
    filled = list(files)
    todo = [i for i, f in enumerate(files) if f is None]
    for i in tqdm(todo, desc=f"estimating poses ({name})", unit="crop"):
        try:
            filled[i] = auto_skeletons(images[i], estimator, str(images[i]))
        except KPRError as exc:
            if args.on_error != "skip":
                raise
            print(
                f"kpr {args.command}: warning: no pose for {images[i]} ({exc}); "
                "embedded without prompt",
                file=sys.stderr,
            )
    return filled


def _output_file(path: str, overwrite: bool, suffix: str) -> Path:
    """Check a file ``--out`` before any work: not a directory, not an existing file unless
    ``--overwrite``, the expected suffix."""
    out = Path(path)
    if out.is_dir():
        raise KPRError(f"--out {out}: is a directory; expected a {suffix} file path")
    if out.suffix.lower() != suffix:
        raise KPRError(f"--out {out}: expected a {suffix} file")
    if out.exists() and not overwrite:
        raise KPRError(f"--out {out}: already exists (pass --overwrite to replace it)")
    return out


def _predictor(args: argparse.Namespace):
    from kpr.predictor import KPRPredictor

    return KPRPredictor.from_pretrained(
        args.checkpoint,
        device=args.device,
        precision=args.precision,
        backend=args.backend,
        onnx_file=args.onnx,
    )


def cmd_embed(args: argparse.Namespace) -> int:
    from kpr.embeddings_file import EmbeddingsWriter

    out = _output_file(args.out, args.overwrite, ".npz")
    images = collect_images(args.images)
    predictor = _predictor(args)
    keypoints = _estimate_missing(images, _keypoints_for(images, args.keypoints), args)
    if args.masks is not None and any(k is not None for k in keypoints):
        raise KPRError("--masks and --keypoints: give one kind of prompt")
    masks = _masks_for(images, args.masks)
    skipped: list[tuple[int, str]] = []
    prompted = 0
    with EmbeddingsWriter(out) as writer:
        chunks = predictor.embed_iter(
            images,
            None if masks is not None else keypoints,
            masks=masks,
            part_labels=args.part_labels,
            batch_size=args.batch_size,
            on_error="skip" if args.on_error == "skip" else "raise",
            progress=True,
        )
        for chunk in chunks:
            skipped.extend(chunk.skipped)
            if chunk.embeddings is not None:
                writer.add([str(images[i]) for i in chunk.indices], chunk.embeddings)
                prompted += int(chunk.embeddings.prompted.sum())
        embedded = len(writer.names)
        if not embedded:
            raise KPRError(
                f"none of the {len(images)} images could be embedded; nothing written to {out}"
            )
        writer.close()
    for index, reason in skipped:
        print(skip_note("embed", images[index], reason), file=sys.stderr)
    note = f", {len(skipped)} skipped" if skipped else ""
    print(f"embedded {embedded} images ({prompted} with prompts{note}) -> {out}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from kpr.imaging import read_rgb
    from kpr.keypoints.groupings import target_grouping
    from kpr.keypoints.io import read_keypoints_file
    from kpr.viz.compare import Sample, check_group_size, comparison_figure

    out = _output_file(args.out, args.overwrite, ".png")
    groups = [collect_images(args.group1), collect_images(args.group2)]
    for option, images in zip(("--group1", "--group2"), groups):
        check_group_size(len(images), option)
    predictor = _predictor(args)
    embedded, samples = [], []
    for images in groups:
        keypoints = _keypoints_for(images, args.keypoints)
        masks = _masks_for(images, args.masks)
        result = predictor.embed(
            images,
            keypoints=None if masks is not None else keypoints,
            masks=masks,
            part_labels=args.part_labels,
            batch_size=args.batch_size,
            part_masks=True,
        )
        embedded.append(result)
        shown = []
        for i, (image, kp_file) in enumerate(zip(images, keypoints)):
            skeletons = read_keypoints_file(kp_file) if kp_file else None
            shown.append(
                Sample(
                    name=image.name,
                    image=read_rgb(image),
                    target=None if skeletons is None else skeletons.target,
                    negatives=None if skeletons is None else skeletons.negatives,
                    part_masks=result.part_masks[i].numpy(),
                    visibility=result.visibility[i].float().numpy(),
                )
            )
        samples.append(shown)
    distances = predictor.distance(embedded[0], embedded[1]).numpy()
    width = max(len(p.name) for p in groups[0])
    print(" " * width + "  " + "  ".join(f"{p.name[:10]:>10}" for p in groups[1]))
    for path, row in zip(groups[0], distances):
        print(f"{path.name:<{width}}  " + "  ".join(f"{d:10.4f}" for d in row))
    config = predictor.config
    part_names = target_grouping(config.target_grouping).part_names
    figure = comparison_figure(
        samples[0], samples[1], distances, part_names, config.prompt_grouping, out
    )
    print(f"figure -> {figure}")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from kpr.checkpoint import load_checkpoint
    from kpr.checkpoint.kpr_format import save_kpr_checkpoint

    ckpt = load_checkpoint(args.checkpoint, semantic_weight=args.semantic_weight)
    out = save_kpr_checkpoint(
        args.out, ckpt.config, ckpt.state_dict, ckpt.metadata, overwrite=args.overwrite
    )
    print(f"converted {args.checkpoint} -> {out}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from kpr.checkpoint import inspect_checkpoint

    ckpt = inspect_checkpoint(args.checkpoint)
    c = ckpt.config
    params = sum(t.numel() for t in ckpt.state_dict.values() if t.is_floating_point())
    rows = [
        ("source", ckpt.metadata.get("source", "kpr")),
        ("backbone", f"{c.backbone.name} ({c.backbone.family})"),
        (
            "widths/depths/heads",
            f"{c.backbone.embed_dim} / {c.backbone.depths} / {c.backbone.num_heads}",
        ),
        ("semantic weight", c.backbone.semantic_weight),
        ("image size (H×W)", f"{c.image_size[0]}×{c.image_size[1]}"),
        ("normalisation", f"mean {c.pixel_mean} std {c.pixel_std}"),
        (
            "prompt grouping",
            f"{c.prompt_grouping}, {c.prompt_type} ({c.prompt_channels} channels: background "
            f"{'yes' if c.prompt_background else 'no'}, "
            f"negatives {'yes' if c.prompt_negatives else 'no'})",
        ),
        ("parts (K)", f"{c.num_parts} ({c.target_grouping})"),
        ("cameras (SIE)", c.num_cameras),
        ("identity classes", c.num_classes),
        ("embedding dim", c.embedding_dim),
        ("parameters", f"{params:,}"),
    ]
    for key in ("epoch", "metrics"):
        if ckpt.metadata.get(key) is not None:
            rows.append((key, ckpt.metadata[key]))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from kpr.engine.config import load_train_config
    from kpr.engine.trainer import Trainer, results_table
    from kpr.recipes import resolve_recipe

    config = load_train_config(resolve_recipe(args.config), args.overrides)
    result = Trainer(config, device=args.device).fit(resume=args.resume)
    if result.evaluations:
        print(results_table(result.evaluations[max(result.evaluations)]))
    print(f"checkpoints in {result.last_checkpoint.parent}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    import json

    from kpr.checkpoint import load_model
    from kpr.devices import resolve_device
    from kpr.engine.config import load_train_config
    from kpr.engine.evaluate import eval_dataset_for, evaluate, prompt_modes
    from kpr.engine.trainer import results_table
    from kpr.io_utils import write_text_atomic
    from kpr.masks import MaskDegradation
    from kpr.recipes import resolve_recipe

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise KPRError(f"--out {out}: is a file; expected a directory")
    if (out / "results.json").exists() and not args.overwrite:
        raise KPRError(f"--out {out}: holds results.json already (pass --overwrite to replace it)")
    shorthands = [f"dataset.eval_name={args.dataset}"] if args.dataset else []
    shorthands += [f"dataset.eval_root={args.root}"] if args.root else []
    config = load_train_config(
        resolve_recipe(args.config) if args.config else None, [*args.overrides, *shorthands]
    )
    if (
        not args.config
        and not shorthands
        and not any(o.startswith("dataset.") for o in args.overrides)
    ):
        raise KPRError(
            "which dataset? pass --dataset NAME --root DIR, dataset.* overrides, or --config RECIPE"
        )
    dataset = eval_dataset_for(config.dataset)
    device = resolve_device(args.device)
    model = load_model(args.checkpoint, device=device)
    modes = prompt_modes(args.prompts or config.eval.prompts, model.config)
    degradation = MaskDegradation(args.degrade_masks) if args.degrade_masks else None
    summaries = {}
    for mode in modes:
        result = evaluate(
            model,
            dataset,
            prompt_mode=mode,
            degrade_masks=degradation if mode == "masks" else None,
            batch_size=args.batch_size or config.eval.batch_size,
            max_rank=config.eval.max_rank,
            protocol=config.eval.protocol,
            progress=True,
            use_cameras=model.camera_embedding is not None,
            precision=args.precision,
            backend=args.backend,
            onnx_file=args.onnx,
            visualize=config.eval.visualize,
            topk_visualize=config.eval.topk_visualize,
            vis_dir=out / "rankings" / mode,
            rerank=config.eval.rerank,
        )
        summaries[mode] = result.summary()
    print(results_table(summaries))
    write_text_atomic(
        out / "results.json",
        json.dumps(
            {"checkpoint": str(args.checkpoint), "dataset": dataset.name, "results": summaries},
            indent=2,
        ),
    )
    print(f"results -> {out / 'results.json'}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from kpr.engine.demo import run_demo

    run_demo(args.out, seed=args.seed, overrides=tuple(args.overrides))
    return 0


def _add_model_options(parser: argparse.ArgumentParser, batch_size: int | None = 32) -> None:
    parser.add_argument(
        "--checkpoint", required=True, help="official .pth.tar or kpr checkpoint directory"
    )
    parser.add_argument(
        "--device", default=None, help="cpu, cuda, cuda:N, mps (default: best available)"
    )
    parser.add_argument(
        "--precision",
        choices=("float32", "bfloat16", "int8", "auto"),
        default="float32",
        help="auto: the fastest path within the documented deviation bound (docs/performance.md)",
    )
    parser.add_argument(
        "--backend",
        choices=("torch", "onnxruntime"),
        default=None,
        help="default torch (--precision auto with --onnx may pick onnxruntime)",
    )
    parser.add_argument(
        "--onnx", default=None, help="a `kpr export` file of --checkpoint for onnxruntime"
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=batch_size,
        help="crops per forward pass"
        + ("" if batch_size else " (default: the recipe's eval.batch_size)"),
    )


def _add_mask_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--masks",
        help="directory of mask PNGs (same stem as the image), for models with mask prompts: "
        "person masks (0 background, 1 target, 2 other people), or part labels (--part-labels)",
    )
    parser.add_argument(
        "--part-labels",
        choices=("lip", "atr", "kpr"),
        default=None,
        help="label table of the --masks part-label maps, for parsing-prompt models",
    )


def _add_on_error(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--on-error",
        choices=("stop", "skip"),
        default="stop",
        help="skip: leave out unreadable images or bad keypoint files and report them",
    )


def _add_overwrite(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--overwrite", action="store_true", help=f"replace {what}")


def build_parser() -> argparse.ArgumentParser:
    from kpr import __version__

    parser = argparse.ArgumentParser(
        prog="kpr", description="Keypoint-promptable person re-identification"
    )
    parser.add_argument("--version", action="version", version=f"kpr {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="<verb>")

    embed = sub.add_parser("embed", help="embed person crops into part embeddings (.npz)")
    embed.add_argument("--images", nargs="+", required=True, help="image files and/or directories")
    embed.add_argument(
        "--keypoints",
        help="directory of keypoint JSON files (official format, same stem as the "
        "image), or 'auto' to prompt every crop from the pose estimator",
    )
    embed.add_argument(
        "--estimator",
        default=None,
        help="pose estimator for crops without a keypoint file "
        "(default with --keypoints auto: mediapipe)",
    )
    _add_mask_options(embed)
    embed.add_argument(
        "--out", required=True, help="output .npz file (embeddings, visibility, prompted, names)"
    )
    _add_on_error(embed)
    _add_model_options(embed)
    _add_overwrite(embed, "an existing --out file")
    embed.set_defaults(func=cmd_embed)

    compare = sub.add_parser(
        "compare", help="distance matrix between two groups of crops, with a figure"
    )
    compare.add_argument("--group1", nargs="+", required=True)
    compare.add_argument("--group2", nargs="+", required=True)
    compare.add_argument("--keypoints", help="directory of keypoint JSON files")
    _add_mask_options(compare)
    compare.add_argument("--out", default="compare.png", help="figure file (.png)")
    _add_model_options(compare)
    _add_overwrite(compare, "an existing --out file")
    compare.set_defaults(func=cmd_compare)

    convert = sub.add_parser(
        "convert", help="official .pth.tar -> kpr checkpoint directory (safetensors + JSON)"
    )
    convert.add_argument(
        "--checkpoint", required=True, help="official .pth.tar (or a kpr checkpoint directory)"
    )
    convert.add_argument("--out", required=True, help="kpr checkpoint directory to create")
    convert.add_argument(
        "--semantic-weight", type=float, default=None, help="SOLIDER semantic weight override"
    )
    convert.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a file at --out (a previous kpr checkpoint is always replaced; "
        "a directory holding other files is always refused)",
    )
    convert.set_defaults(func=cmd_convert)

    info = sub.add_parser("info", help="describe a checkpoint (and check that it loads)")
    info.add_argument("--checkpoint", required=True)
    info.set_defaults(func=cmd_info)

    train = sub.add_parser(
        "train", help="train from a recipe: kpr train --config RECIPE [key=value ...]"
    )
    train.add_argument(
        "--config",
        required=True,
        help="YAML file or shipped recipe name (e.g. synthetic_kpr, official/solider_market)",
    )
    train.add_argument(
        "overrides", nargs="*", help="dotted key=value overrides, e.g. optim.epochs=10"
    )
    train.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in output_dir from its last checkpoint",
    )
    train.add_argument("--device", default=None)
    train.set_defaults(func=cmd_train)

    evaluate = sub.add_parser("eval", help="evaluate a kpr or official checkpoint on a dataset")
    evaluate.add_argument(
        "--config", help="recipe naming the dataset (optional: YAML or shipped name)"
    )
    evaluate.add_argument(
        "--dataset", help="registered dataset name to evaluate on (e.g. market1501, synthetic)"
    )
    evaluate.add_argument("--root", help="that dataset's root directory")
    evaluate.add_argument(
        "overrides", nargs="*", help="dotted key=value overrides, e.g. dataset.eval_options.x=1"
    )
    evaluate.add_argument(
        "--prompts",
        choices=("keypoints", "masks", "empty", "both"),
        default=None,
        help="default: the recipe's eval.prompts (both = the model's own prompts and empty)",
    )
    evaluate.add_argument(
        "--degrade-masks",
        choices=("erode", "dilate", "leak"),
        default=None,
        help="mask prompts: degrade every mask like a real segmenter (docs/mask_prompts.md)",
    )
    evaluate.add_argument(
        "--out", default="runs/eval", help="output directory (results.json, rankings/)"
    )
    _add_model_options(evaluate, batch_size=None)
    _add_overwrite(evaluate, "results.json in --out")
    evaluate.set_defaults(func=cmd_eval)

    demo = sub.add_parser(
        "demo", help="train and evaluate KPR vs no prompt on the synthetic benchmark (CPU)"
    )
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--out", default="runs/demo", help="output directory")
    demo.add_argument(
        "overrides",
        nargs="*",
        help="recipe overrides applied to both trainings, e.g. optim.epochs=2",
    )
    demo.set_defaults(func=cmd_demo)

    from kpr.export.cli import add_export_parser
    from kpr.pose.cli import add_annotate_parser
    from kpr.serve.cli import add_serve_parsers
    from kpr.synthetic.cli import add_synth_parser, run_synth
    from kpr.tracking.cli import add_tracking_parsers

    add_synth_parser(sub).set_defaults(func=run_synth)
    add_annotate_parser(sub)
    add_export_parser(sub)
    add_tracking_parsers(sub)
    add_serve_parsers(sub)
    return parser


def _warn_one_line(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    print(f"kpr: warning: {message}", file=sys.stderr)


def _quiet_opencv() -> None:
    # kpr reports an unreadable image itself, in one line; OpenCV's decoder warnings would add more.
    import cv2

    cv2.setLogLevel(2)  # errors only


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    args = build_parser().parse_args(argv)
    # Imported once the arguments are read: it imports torch, 3 s that `kpr --help` does not need.
    from kpr.denormals import flush_denormals, flush_mode_kept

    warnings.showwarning = _warn_one_line
    _quiet_opencv()
    tune_cpu_allocator()
    # Flushed for the verb, then the caller's mode again: a program calling main() in-process
    # (the tests do) keeps subnormal Python and numpy floats afterwards.
    with flush_mode_kept():
        flush_denormals()
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    """The verb, with every failure turned into one line and an exit code."""
    try:
        with sigterm_unwinds():
            return int(args.func(args) or 0)
    except KPRError as exc:
        print(f"kpr {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"kpr {args.command}: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print(f"kpr {args.command}: terminated", file=sys.stderr)
        return TERMINATED_EXIT_CODE
    except OSError as exc:
        print(f"kpr {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # a bug: still one line, with a way to get the traceback
        if os.environ.get("KPR_DEBUG"):
            raise
        print(
            f"kpr {args.command}: internal error: {type(exc).__name__}: {exc} "
            "(set KPR_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
