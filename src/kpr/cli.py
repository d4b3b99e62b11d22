"""The ``kpr`` command line: ``kpr <verb> [options]``."""

from __future__ import annotations

import argparse
import io
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from kpr.errors import KPRError

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
                raise KPRError(f"{path}: no images ({', '.join(IMAGE_EXTENSIONS)}) in this directory")
            paths.extend(found)
        elif path.is_file():
            paths.append(path)
        else:
            raise KPRError(f"{path}: no such image file or directory")
    return paths


def keypoint_file_for(image: Path, directory: Path | None) -> Path | None:
    """The keypoint file of ``image`` in ``directory``: ``<stem>.json``, or the official namings
    ``<name>_keypoints.json`` / ``<name>.predictions.json``; ``None`` if there is none."""
    if directory is None:
        return None
    for candidate in (f"{image.stem}.json", f"{image.name}_keypoints.json", f"{image.name}.predictions.json"):
        if (directory / candidate).is_file():
            return directory / candidate
    return None


def _keypoints_for(images: list[Path], directory: str | None) -> list[Path | None]:
    kp_dir = Path(directory) if directory else None
    if kp_dir is not None and not kp_dir.is_dir():
        raise KPRError(f"{kp_dir}: keypoints directory not found")
    files = [keypoint_file_for(image, kp_dir) for image in images]
    missing = sum(f is None for f in files)
    if kp_dir is not None and missing:
        log.warning("%d of %d images have no keypoint file in %s: embedded without prompt", missing, len(files), kp_dir)
    return files


def _predictor(args: argparse.Namespace):
    from kpr.predictor import KPRPredictor

    return KPRPredictor.from_pretrained(args.checkpoint, device=args.device, precision=args.precision)


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    from kpr.io_utils import write_bytes_atomic

    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    write_bytes_atomic(path, buffer.getvalue())


def cmd_embed(args: argparse.Namespace) -> int:
    images = collect_images(args.images)
    keypoints = _keypoints_for(images, args.keypoints)
    result = _predictor(args).embed(images, keypoints=keypoints, batch_size=args.batch_size, progress=True)
    _save_npz(
        Path(args.out),
        embeddings=result.embeddings.numpy(),
        visibility=result.visibility.numpy(),
        prompted=result.prompted.numpy(),
        names=np.array([str(p) for p in images]),
    )
    print(f"embedded {len(images)} images ({int(result.prompted.sum())} with prompts) -> {args.out}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from kpr.imaging import read_rgb
    from kpr.keypoints.groupings import target_grouping
    from kpr.keypoints.io import read_keypoints_file
    from kpr.viz.compare import Sample, comparison_figure

    predictor = _predictor(args)
    groups = [collect_images(args.group1), collect_images(args.group2)]
    embedded, samples = [], []
    for images in groups:
        keypoints = _keypoints_for(images, args.keypoints)
        result = predictor.embed(images, keypoints=keypoints, batch_size=args.batch_size)
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
    out = comparison_figure(samples[0], samples[1], distances, part_names, config.prompt_grouping, args.out)
    print(f"figure -> {out}")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from kpr.checkpoint import load_checkpoint
    from kpr.checkpoint.kpr_format import save_kpr_checkpoint

    ckpt = load_checkpoint(args.source, semantic_weight=args.semantic_weight)
    out = save_kpr_checkpoint(args.out, ckpt.config, ckpt.state_dict, ckpt.metadata)
    print(f"converted {args.source} -> {out}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from kpr.checkpoint import load_checkpoint

    ckpt = load_checkpoint(args.checkpoint)
    c = ckpt.config
    params = sum(t.numel() for t in ckpt.state_dict.values() if t.is_floating_point())
    rows = [
        ("source", ckpt.metadata.get("source", "kpr")),
        ("backbone", f"{c.backbone.name} ({c.backbone.family})"),
        ("widths/depths/heads", f"{c.backbone.embed_dim} / {c.backbone.depths} / {c.backbone.num_heads}"),
        ("semantic weight", c.backbone.semantic_weight),
        ("image size (H×W)", f"{c.image_size[0]}×{c.image_size[1]}"),
        ("normalisation", f"mean {c.pixel_mean} std {c.pixel_std}"),
        ("prompt grouping", f"{c.prompt_grouping} ({c.prompt_channels} channels)"),
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
    from kpr.data.datasets import build_dataset
    from kpr.engine.config import load_train_config
    from kpr.engine.evaluate import evaluate
    from kpr.engine.trainer import data_config_for, results_table
    from kpr.io_utils import write_text_atomic
    from kpr.recipes import resolve_recipe
    from kpr.predictor import resolve_device

    config = load_train_config(resolve_recipe(args.config) if args.config else None, args.overrides)
    ds = config.dataset
    dataset = build_dataset(ds.eval_name or ds.name, root=Path(ds.eval_root or ds.root).expanduser(), **(ds.eval_options or ds.options))
    model = load_model(args.checkpoint, device=resolve_device(args.device))
    data_config = data_config_for(config, model)
    modes = ["keypoints", "empty"] if args.prompts == "both" else [args.prompts]
    out = Path(args.out)
    summaries = {}
    for mode in modes:
        result = evaluate(model, dataset, data_config, prompt_mode=mode, batch_size=config.eval.batch_size,
                          max_rank=config.eval.max_rank, protocol=config.eval.protocol, progress=True,
                          use_cameras=model.camera_embedding is not None, visualize=config.eval.visualize,
                          topk_visualize=config.eval.topk_visualize, vis_dir=out / "rankings" / mode,
                          rerank=config.eval.rerank)
        summaries[mode] = result.summary()
    print(results_table(summaries))
    write_text_atomic(out / "results.json", json.dumps({"checkpoint": str(args.checkpoint), "dataset": dataset.name,
                                                        "results": summaries}, indent=2))
    print(f"results -> {out / 'results.json'}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from kpr.engine.demo import run_demo

    run_demo(args.out, seed=args.seed, overrides=tuple(args.overrides))
    return 0


def _add_inference_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="official .pth.tar or kpr checkpoint directory")
    parser.add_argument("--keypoints", help="directory of keypoint JSON files (official format, same stem as the image)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default=None, help="cpu, cuda, mps (default: best available)")
    parser.add_argument("--precision", choices=("float32", "bfloat16"), default="float32")


def build_parser() -> argparse.ArgumentParser:
    from kpr import __version__

    parser = argparse.ArgumentParser(prog="kpr", description="Keypoint-promptable person re-identification")
    parser.add_argument("--version", action="version", version=f"kpr {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="<verb>")

    embed = sub.add_parser("embed", help="embed person crops into part embeddings (.npz)")
    embed.add_argument("--images", nargs="+", required=True, help="image files and/or directories")
    embed.add_argument("--out", required=True, help="output .npz (embeddings, visibility, prompted, names)")
    _add_inference_options(embed)
    embed.set_defaults(func=cmd_embed)

    compare = sub.add_parser("compare", help="distance matrix between two groups of crops, with a figure")
    compare.add_argument("--group1", nargs="+", required=True)
    compare.add_argument("--group2", nargs="+", required=True)
    compare.add_argument("--out", default="compare.png", help="figure path (PNG)")
    _add_inference_options(compare)
    compare.set_defaults(func=cmd_compare)

    convert = sub.add_parser("convert", help="official .pth.tar -> kpr checkpoint directory (safetensors + JSON)")
    convert.add_argument("source")
    convert.add_argument("out")
    convert.add_argument("--semantic-weight", type=float, default=None, help="SOLIDER semantic weight override")
    convert.set_defaults(func=cmd_convert)

    info = sub.add_parser("info", help="describe a checkpoint")
    info.add_argument("checkpoint")
    info.set_defaults(func=cmd_info)

    train = sub.add_parser("train", help="train from a recipe: kpr train --config RECIPE [key=value ...]")
    train.add_argument("--config", required=True, help="YAML file or shipped recipe name (e.g. synthetic_kpr, official/solider_market)")
    train.add_argument("overrides", nargs="*", help="dotted key=value overrides, e.g. optim.epochs=10")
    train.add_argument("--resume", action="store_true", help="continue the run in output_dir from its last checkpoint")
    train.add_argument("--device", default=None)
    train.set_defaults(func=cmd_train)

    evaluate = sub.add_parser("eval", help="evaluate a kpr or official checkpoint on a dataset")
    evaluate.add_argument("--checkpoint", required=True)
    evaluate.add_argument("--config", help="recipe naming the dataset (YAML or shipped name)")
    evaluate.add_argument("overrides", nargs="*", help="dotted key=value overrides, e.g. dataset.root=/data")
    evaluate.add_argument("--prompts", choices=("keypoints", "empty", "both"), default="both")
    evaluate.add_argument("--out", default="runs/eval")
    evaluate.add_argument("--device", default=None)
    evaluate.set_defaults(func=cmd_eval)

    demo = sub.add_parser("demo", help="train and evaluate KPR vs no prompt on the synthetic benchmark (CPU)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--out", default="runs/demo")
    demo.add_argument("overrides", nargs="*", help="recipe overrides applied to both trainings, e.g. optim.epochs=2")
    demo.set_defaults(func=cmd_demo)

    from kpr.cli_synth import add_synth_parser, run_synth

    add_synth_parser(sub).set_defaults(func=run_synth)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KPRError as exc:
        print(f"kpr {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
