"""The KPR paper's component ablation (Table 3) and prompt-optionality study (Fig. 5).

Both run on the built-in synthetic multi-person benchmark (the data of ``kpr demo``).

Each row is one training of the ``synthetic_kpr`` recipe with overrides (same data, same seed),
scored on the multi-person queries (every query of this benchmark):

    a  part-based head on the last Swin stage only (no MSF), no prompts, no BIPO
    b  + multi-stage fusion (MSF)
    c  + positive prompts (target keypoints only: no negative channel)
    d  + negative prompts (the other people's keypoints)
    e  + BIPO  (= the KPR that ``kpr demo`` trains)

Fig. 5 (with row e): row e's final weights evaluated with a fraction f of every query's and gallery
image's target keypoints removed at random (seeded per image), f = 0, 0.2, …, 1; the negative
keypoints are kept. References: the same weights with the empty prompt, and row b (trained without
prompts) when it was run.

Usage: python benchmarks/ablation_synthetic.py [--seed 0] [--epochs N] [--rows a,b,c,d,e]
                                               [--out runs/ablation]
Writes <out>/results.json, <out>/results.md and, with row e, <out>/prompt_dropout.png.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shlex
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from machine import machine_facts  # noqa: E402

from kpr.engine.config import load_train_config
from kpr.engine.demo import demo_dataset_config, ensure_dataset
from kpr.engine.evaluate import evaluate
from kpr.engine.trainer import Trainer
from kpr.io_utils import write_text_atomic
from kpr.recipes import resolve_recipe

RECIPE = "synthetic_kpr"
GROUP = "multi_person"
DROP_FRACTIONS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


@dataclass(frozen=True)
class Row:
    """One ablation row: ``overrides`` of the recipe and the prompts it is evaluated with."""

    label: str
    overrides: tuple[str, ...]
    prompts: Literal["keypoints", "empty"]


ROWS: dict[str, Row] = {
    "a": Row(
        "PBH, last stage only",
        ("train_prompts=false", "model_overrides.fusion_stages=[3]", "augmentation.bipo_p=0"),
        "empty",
    ),
    "b": Row("+ MSF", ("train_prompts=false", "augmentation.bipo_p=0"), "empty"),
    "c": Row(
        "+ positive prompts",
        ("model_overrides.prompt_negatives=false", "augmentation.bipo_p=0"),
        "keypoints",
    ),
    "d": Row("+ negative prompts", ("augmentation.bipo_p=0",), "keypoints"),
    "e": Row("+ BIPO (= KPR)", (), "keypoints"),
}


def scores(summary: dict[str, Any]) -> dict[str, float]:
    """Rank-1 and mAP (in %) of the multi-person queries of an ``EvalResult.summary()``."""
    group = summary[GROUP]
    return {"rank1": round(100 * group["rank1"], 1), "mAP": round(100 * group["mAP"], 1)}


def train_row(
    key: str, data: Path, out: Path, seed: int, epochs: int | None, progress: bool
) -> tuple[Trainer, dict[str, Any]]:
    """Train row ``key``; returns the trainer (final weights) and the row's result."""
    row = ROWS[key]
    run_dir = out / f"row_{key}"
    shutil.rmtree(run_dir, ignore_errors=True)
    # Row e is also scored with the empty prompt: the prompt-free reference of Fig. 5.
    eval_prompts = "both" if key == "e" else row.prompts
    overrides = [
        f"dataset.root={data}",
        f"output_dir={run_dir}",
        f"seed={seed}",
        "eval.visualize=0",
        f"eval.prompts={eval_prompts}",
        *row.overrides,
    ]
    if epochs is not None:
        overrides.append(f"optim.epochs={epochs}")
    config = load_train_config(resolve_recipe(RECIPE), overrides)
    start = time.perf_counter()
    trainer = Trainer(config, device="cpu", progress=progress)
    final = trainer.fit().evaluations[config.optim.epochs - 1]
    result = {
        "label": row.label,
        "overrides": list(row.overrides),
        "prompts": row.prompts,
        **scores(final[row.prompts]),
        "wall_time_s": round(time.perf_counter() - start, 1),
    }
    if key == "e":
        result["empty_prompt"] = scores(final["empty"])
    print(
        f"row {key} ({row.label}): Rank-1 {result['rank1']:.1f}, mAP {result['mAP']:.1f}, "
        f"{result['wall_time_s']:.0f} s",
        flush=True,
    )
    return trainer, result


def prompt_dropout(trainer: Trainer, seed: int) -> list[dict[str, float]]:
    """Scores of ``trainer``'s model with a fraction f of the target keypoints removed, per f."""
    ec = trainer.config.eval
    points = []
    for fraction in DROP_FRACTIONS:
        result = evaluate(
            trainer.model,
            trainer.eval_dataset,
            prompt_mode="keypoints",
            drop_keypoints=fraction,
            drop_seed=seed,
            batch_size=ec.batch_size,
            max_rank=ec.max_rank,
            protocol=ec.protocol,
            use_cameras=trainer.use_cameras,
            rerank=ec.rerank,
        )
        points.append({"fraction": fraction, **scores(result.summary())})
        print(
            f"  {100 * fraction:3.0f} % of target keypoints removed: "
            f"Rank-1 {points[-1]['rank1']:.1f}, "
            f"mAP {points[-1]['mAP']:.1f}",
            flush=True,
        )
    return points


def plot_prompt_dropout(results: dict[str, Any], path: Path) -> None:
    """Rank-1 and mAP of row e vs the fraction of target keypoints removed, with the references."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = results["prompt_dropout"]
    x = [100 * p["fraction"] for p in points]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharex=True)
    for ax, metric, name in zip(axes, ("rank1", "mAP"), ("Rank-1", "mAP")):
        ax.plot(
            x,
            [p[metric] for p in points],
            "o-",
            color="tab:red",
            label="KPR (row e), prompt with keypoints removed",
        )
        ax.axhline(
            results["rows"]["e"]["empty_prompt"][metric],
            color="tab:gray",
            ls=":",
            label="same weights, empty prompt",
        )
        if "b" in results["rows"]:
            ax.axhline(
                results["rows"]["b"][metric],
                color="tab:blue",
                ls="--",
                label="row b, trained without prompts",
            )
        ax.set_xlabel("target keypoints removed from each prompt (%)")
        ax.set_ylabel(f"{name} (%)")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=3, fontsize=8)
    fig.suptitle(
        f"Prompt optionality on the synthetic multi-person benchmark (seed {results['seed']})",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def markdown(results: dict[str, Any]) -> str:
    """The results as Markdown tables."""
    lines = [
        f"Measured {results['date']} (`{results['command']}`), seed {results['seed']}, "
        f"{results['epochs']} epochs, {results['wall_time_s'] / 60:.1f} min in all.",
        "",
        "| row | components | Rank-1 | mAP | wall time |",
        "|---|---|---|---|---|",
    ]
    for key, row in results["rows"].items():
        lines.append(
            f"| {key} | {row['label']} | {row['rank1']:.1f} | {row['mAP']:.1f} | "
            f"{row['wall_time_s'] / 60:.1f} min |"
        )
    if "prompt_dropout" in results:
        empty = results["rows"]["e"]["empty_prompt"]
        lines += ["", "| target keypoints removed | Rank-1 | mAP |", "|---|---|---|"]
        lines += [
            f"| {100 * p['fraction']:.0f} % | {p['rank1']:.1f} | {p['mAP']:.1f} |"
            for p in results["prompt_dropout"]
        ]
        lines.append(
            f"| empty prompt (no negatives either) | {empty['rank1']:.1f} | {empty['mAP']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="dataset, training and keypoint-removal seed"
    )
    parser.add_argument(
        "--epochs", type=int, default=None, help="training epochs (default: the recipe's)"
    )
    parser.add_argument(
        "--rows", default=",".join(ROWS), help="comma-separated rows to run (default: all)"
    )
    parser.add_argument("--out", type=Path, default=Path("runs/ablation"))
    args = parser.parse_args()
    print(machine_facts(), flush=True)
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = sorted(set(rows) - set(ROWS))
    if unknown or not rows:
        parser.error(f"--rows: unknown row(s) {unknown or rows}; choose from {','.join(ROWS)}")
    rows = [key for key in ROWS if key in rows]

    start = time.perf_counter()
    progress = sys.stderr.isatty()
    data = args.out / "data"
    ensure_dataset(data, demo_dataset_config(args.seed), progress)
    results: dict[str, Any] = {
        "date": datetime.date.today().isoformat(),
        "command": shlex.join(["python", *sys.argv]),
        "seed": args.seed,
        "epochs": args.epochs or load_train_config(resolve_recipe(RECIPE)).optim.epochs,
        "group": GROUP,
        "rows": {},
    }
    for key in rows:
        trainer, results["rows"][key] = train_row(
            key, data, args.out, args.seed, args.epochs, progress
        )
        if key == "e":
            print("prompt optionality (row e):", flush=True)
            results["prompt_dropout"] = prompt_dropout(trainer, args.seed)
        del trainer
    results["wall_time_s"] = round(time.perf_counter() - start, 1)
    write_text_atomic(args.out / "results.json", json.dumps(results, indent=2))
    table = markdown(results)
    write_text_atomic(args.out / "results.md", table)
    if "prompt_dropout" in results:
        plot_prompt_dropout(results, args.out / "prompt_dropout.png")
    print()
    print(table)
    print(f"results in {args.out / 'results.json'}, {args.out / 'results.md'}")


if __name__ == "__main__":
    main()
