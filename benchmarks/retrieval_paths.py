"""What each inference path does to retrieval: Rank-1/mAP and embedding deviation against float32.

One trained model (default: the demo's, ``runs/demo/kpr``) is evaluated on its benchmark's query
and gallery (default: the synthetic demo data, ``runs/demo/data``) through
:func:`kpr.engine.evaluate.evaluate` with each path of :class:`kpr.predictor.KPRPredictor`:
``float32`` (the reference), ``bfloat16`` autocast, ``int8`` (dynamic quantization of the Linear
layers) and ONNX Runtime (float32, from a ``kpr.export`` file) — each with the model's prompts and
with the empty prompt. Per path and prompt mode it prints Rank-1 and mAP, their change against
float32 (percentage points), the deviation of the embeddings from float32's over every query and
gallery crop (min cosine over all slots, max |Δ|, visibility agreement) and the time of the
evaluation (embedding + ranking; ONNX Runtime's includes loading its session, not the export).

    python benchmarks/retrieval_paths.py
    python benchmarks/retrieval_paths.py --checkpoint runs/demo/kpr --data runs/demo/data
    python benchmarks/retrieval_paths.py --paths float32,int8
"""

from __future__ import annotations

import argparse
import datetime
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from machine import machine_facts

from kpr.checkpoint import load_model
from kpr.data.datasets import build_dataset
from kpr.engine.evaluate import embed_samples, evaluate
from kpr.errors import KPRError
from kpr.masks import table_for_classes
from kpr.predictor import Embeddings, KPRPredictor

PATHS = ("float32", "bfloat16", "int8", "onnxruntime")
MODES = ("keypoints", "empty")


@dataclass(frozen=True)
class Row:
    path: str
    mode: str
    rank1: float
    mAP: float
    seconds: float
    crops: int
    min_cos: float
    max_abs: float
    vis_agree: float


def resolve_checkpoint(path: Path) -> Path:
    """A run directory (``…/checkpoints/best`` inside), a kpr checkpoint dir or an official file."""
    best = path / "checkpoints" / "best"
    return best if best.is_dir() else path


def predictor_options(path: str, onnx_file: Path | None) -> dict:
    if path == "onnxruntime":
        return {"precision": "float32", "backend": "onnxruntime", "onnx_file": onnx_file}
    return {"precision": path, "backend": "torch", "onnx_file": None}


def deviation(ref: Embeddings, out: Embeddings) -> tuple[float, float, float]:
    """(min cosine over every crop and slot, max |Δ|, fraction of equal visibility) vs ``ref``."""
    a, b = ref.embeddings.float(), out.embeddings.float()
    cos = torch.nn.functional.cosine_similarity(a, b, dim=-1)
    agree = (ref.visibility == out.visibility).float().mean()
    return float(cos.min()), float((a - b).abs().max()), float(agree)


def run(args: argparse.Namespace) -> list[Row]:
    model = load_model(resolve_checkpoint(args.checkpoint))
    dataset = build_dataset(args.dataset, root=args.data, verbose=False)
    if not dataset.query or not dataset.gallery:
        raise KPRError(f"{args.data}: the dataset has no query or gallery split")
    samples = [*dataset.query, *dataset.gallery]
    part_table = table_for_classes(dataset.parsing_classes)
    paths = ["float32", *(p for p in args.paths if p != "float32")]
    rows: list[Row] = []
    reference: dict[str, Embeddings] = {}
    with tempfile.TemporaryDirectory(prefix="kpr-retrieval-paths-") as tmp:
        onnx_file = None
        if "onnxruntime" in paths:
            from kpr.export import export_onnx

            start = time.perf_counter()
            onnx_file = export_onnx(model, Path(tmp) / "model.onnx")
            print(f"exported {onnx_file.name} in {time.perf_counter() - start:.1f} s", flush=True)
        for path in paths:
            options = predictor_options(path, onnx_file)
            for mode in MODES:
                start = time.perf_counter()
                result = evaluate(
                    model, dataset, prompt_mode=mode, batch_size=args.batch_size, **options
                )
                seconds = time.perf_counter() - start
                predictor = KPRPredictor(model, "cpu", **options)
                out = embed_samples(
                    predictor,
                    samples,
                    prompt_mode=mode,
                    part_table=part_table,
                    batch_size=args.batch_size,
                )
                reference.setdefault(mode, out)
                scores = result.summary()["all"]
                row = Row(
                    path,
                    mode,
                    scores["rank1"],
                    scores["mAP"],
                    seconds,
                    len(samples),
                    *deviation(reference[mode], out),
                )
                print(f"  {path:<11} {mode:<9} R1 {row.rank1:.4f} mAP {row.mAP:.4f} "
                      f"{row.seconds:.1f} s", flush=True)  # fmt: skip
                rows.append(row)
    return rows


def table(rows: list[Row]) -> str:
    ref = {r.mode: r for r in rows if r.path == "float32"}
    lines = [
        "| path | prompts | Rank-1 | mAP | ΔRank-1 (pp) | ΔmAP (pp) | min cos vs fp32 | "
        "max abs Δ | visibility equal | eval time |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        base = ref[r.mode]
        lines.append(
            f"| {r.path} | {r.mode} | {100 * r.rank1:.2f} % | {100 * r.mAP:.2f} % | "
            f"{100 * (r.rank1 - base.rank1):+.2f} | {100 * (r.mAP - base.mAP):+.2f} | "
            f"{r.min_cos:.6f} | {r.max_abs:.2e} | {100 * r.vis_agree:.2f} % | "
            f"{r.seconds:.1f} s ({r.crops / r.seconds:.0f} crops/s) |"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=Path("runs/demo/kpr"))
    parser.add_argument("--data", type=Path, default=Path("runs/demo/data"))
    parser.add_argument("--dataset", default="synthetic", help="registered dataset name")
    parser.add_argument("--paths", default=",".join(PATHS), help=f"comma-separated of {PATHS}")
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args(argv)
    args.paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    unknown = sorted(set(args.paths) - set(PATHS))
    if unknown or not args.paths:
        parser.error(f"--paths: expected some of {', '.join(PATHS)}, got {unknown or 'none'}")
    if args.batch_size < 1:
        parser.error(f"--batch-size: expected a positive integer, got {args.batch_size}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    facts = machine_facts()
    print(facts, flush=True)
    try:
        rows = run(args)
    except (KPRError, OSError) as exc:
        print(f"retrieval_paths: {exc}", file=sys.stderr)
        return 1
    when = datetime.date.today().isoformat()
    print(f"\n{when}; {facts}; checkpoint {args.checkpoint}, data {args.data}, "
          f"{rows[0].crops} crops (query + gallery), batch {args.batch_size}\n")  # fmt: skip
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
