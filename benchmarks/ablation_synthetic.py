"""The KPR paper's component ablation (Table 3) and prompt-optionality study (Fig. 5), over seeds.

Both run on the built-in synthetic benchmark (the data of ``kpr demo``), whose queries come in two
kinds: multi-person crops (another person in front of or behind the target) and single-person ones.

Each row is one training of a synthetic recipe with overrides (same data and seed per seed), named
after the paper's experiment ids; all but 8d train without prompt dropout:

    1   global embedding, last Swin stage only, no prompts, no BIPO
    2   part-based head (PBH), last stage only
    3   + multi-stage fusion (MSF)
    4   + positive prompts (target keypoints; no negative channel)
    5   + negative prompts (the other people's keypoints)
    6   PBH + MSF + BIPO, no prompts  (= the demo's non-promptable baseline)
    7   global embedding + MSF + prompts + BIPO
    8   PBH + MSF + prompts + BIPO  (the paper's KPR)
    8d  8 + prompt dropout (PROMPT_DROPOUT below; the demo's default)
    8m  8 with mask prompts (target / other-people masks) instead of keypoints

Rows with prompts are scored with their prompts and with the empty prompt. Fig. 5: the final
weights of rows 8 and 8d evaluated with a fraction f of every query's and gallery image's target
keypoints removed (seeded per image), f = 0, 0.2, …, 1, against row 6 (trained without prompts).

Usage: python benchmarks/ablation_synthetic.py [--seeds 0,1,2] [--rows 1,2,…] [--out runs/ablation]
                                               [--threads N]
Each (seed, row) is written to <out>/seed<S>/row_<R>/row_result.json as soon as it is done and
reused by the next run with the same settings, so an interrupted run resumes. Writes
<out>/results.json, <out>/results.md and <out>/prompt_optionality.png (mean ± std over the seeds).
"""

from __future__ import annotations

import argparse
import datetime
import json
import shlex
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from machine import machine_facts  # noqa: E402

from kpr.engine.config import load_train_config
from kpr.engine.demo import demo_dataset_config, ensure_dataset, remove_training_run
from kpr.engine.evaluate import evaluate, prompt_modes
from kpr.engine.trainer import Trainer
from kpr.io_utils import write_text_atomic
from kpr.recipes import resolve_recipe

GROUPS = ("all", "multi_person", "single_person")
DROP_FRACTIONS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
NO_PROMPTS = ("train_prompts=false",)
NO_BIPO = ("augmentation.bipo_p=0",)
LAST_STAGE = ("model_overrides.fusion_stages=[3]",)
GLOBAL = ("model_overrides.head=global",)
PROMPT_DROPOUT = ("prompt_dropout.alone_p=0.5",)


@dataclass(frozen=True)
class Row:
    """One ablation row: the paper's components, the recipe and its overrides."""

    label: str
    pbh: bool
    msf: bool
    positive: bool
    negative: bool
    bipo: bool
    overrides: tuple[str, ...]
    recipe: str = "synthetic_kpr"
    prompt_dropout: bool = False

    @property
    def prompted(self) -> bool:
        return self.positive


ROWS: dict[str, Row] = {
    "1": Row(
        "global", False, False, False, False, False, GLOBAL + LAST_STAGE + NO_PROMPTS + NO_BIPO
    ),
    "2": Row("PBH", True, False, False, False, False, LAST_STAGE + NO_PROMPTS + NO_BIPO),
    "3": Row("+ MSF", True, True, False, False, False, NO_PROMPTS + NO_BIPO),
    "4": Row(
        "+ positive prompts",
        True,
        True,
        True,
        False,
        False,
        ("model_overrides.prompt_negatives=false",) + NO_BIPO,
    ),
    "5": Row("+ negative prompts", True, True, True, True, False, NO_BIPO),
    "6": Row("BIPO, no prompts (baseline)", True, True, False, False, True, NO_PROMPTS),
    "7": Row("global + prompts + BIPO", False, True, True, True, True, GLOBAL),
    "8": Row("KPR", True, True, True, True, True, ()),
    "8d": Row(
        "KPR + prompt dropout", True, True, True, True, True, PROMPT_DROPOUT, prompt_dropout=True
    ),
    "8m": Row("KPR, mask prompts", True, True, True, True, True, (), "synthetic_kpr_masks"),
}
CURVE_ROWS = ("8", "8d")


def scores(summary: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Rank-1 and mAP (in %) per query group of an ``EvalResult.summary()``."""
    return {
        g: {"rank1": round(100 * summary[g]["rank1"], 1), "mAP": round(100 * summary[g]["mAP"], 1)}
        for g in GROUPS
        if g in summary
    }


def drop_curve(trainer: Trainer, seed: int) -> list[dict[str, Any]]:
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
        )
        points.append({"fraction": fraction, **scores(result.summary())})
    return points


def run_row(
    key: str, seed: int, data: Path, out: Path, progress: bool, train: bool = True
) -> dict[str, Any] | None:
    """Train and score row ``key`` for ``seed`` (or reuse its result from an earlier run; with
    ``train=False`` only that, None if there is none)."""
    row = ROWS[key]
    run_dir = out / f"seed{seed}" / f"row_{key}"
    done = run_dir / "row_result.json"
    if not train and not (data / "dataset.json").is_file():
        return None
    generator = json.loads((data / "dataset.json").read_text(encoding="utf-8"))["generator"]
    # The recipe's text too: a result trained with an earlier version of the recipe is not reused.
    settings = {
        "recipe": row.recipe,
        "recipe_text": resolve_recipe(row.recipe).read_text(encoding="utf-8"),
        "overrides": list(row.overrides),
        "dataset": generator,
    }
    if done.is_file():
        previous = json.loads(done.read_text(encoding="utf-8"))
        if previous.get("settings") == settings:
            return previous
    if not train:
        return None
    remove_training_run(run_dir)
    overrides = [
        f"dataset.root={data}",
        f"output_dir={run_dir}",
        f"seed={seed}",
        "eval.visualize=0",
        f"eval.prompts={'both' if row.prompted else 'empty'}",
        # The paper's rows train without prompt dropout, whatever the recipe's default.
        *(() if row.prompt_dropout else ("~prompt_dropout",)),
        *row.overrides,
    ]
    config = load_train_config(resolve_recipe(row.recipe), overrides)
    start = time.perf_counter()
    trainer = Trainer(config, device="cpu", progress=progress)
    final = trainer.fit().evaluations[config.optim.epochs - 1]
    modes = prompt_modes("both" if row.prompted else "empty", trainer.model.config)
    result: dict[str, Any] = {
        "settings": settings,
        "prompted": scores(final[modes[0]]) if row.prompted else None,
        "empty": scores(final["empty"]),
    }
    if key in CURVE_ROWS:
        result["drop_curve"] = drop_curve(trainer, seed)
    result["wall_time_s"] = round(time.perf_counter() - start, 1)
    write_text_atomic(done, json.dumps(result, indent=2))
    own = result["prompted"] or result["empty"]
    print(
        f"seed {seed} row {key} ({row.label}): multi-person R1 {own['multi_person']['rank1']:.1f}, "
        f"single-person R1 {own['single_person']['rank1']:.1f} (empty prompt "
        f"{result['empty']['single_person']['rank1']:.1f}), {result['wall_time_s']:.0f} s",
        flush=True,
    )
    return result


def mean_std(values: list[float]) -> dict[str, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": round(statistics.fmean(values), 2), "std": round(std, 2)}


def aggregate(per_seed: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean ± std over seeds of every score of one row."""
    out: dict[str, Any] = {"seeds": len(per_seed)}
    for mode in ("prompted", "empty"):
        if per_seed[0][mode] is None:
            continue
        out[mode] = {
            g: {m: mean_std([r[mode][g][m] for r in per_seed]) for m in ("rank1", "mAP")}
            for g in per_seed[0][mode]
        }
    if "drop_curve" in per_seed[0]:
        out["drop_curve"] = [
            {
                "fraction": point["fraction"],
                **{
                    g: {
                        m: mean_std([r["drop_curve"][i][g][m] for r in per_seed])
                        for m in ("rank1", "mAP")
                    }
                    for g in GROUPS
                    if g in point
                },
            }
            for i, point in enumerate(per_seed[0]["drop_curve"])
        ]
    return out


def _cell(stat: dict[str, float]) -> str:
    return f"{stat['mean']:.1f} ± {stat['std']:.1f}"


def markdown(results: dict[str, Any]) -> str:
    """Table 3 in miniature (mean ± std over the seeds) and the Fig. 5 points."""
    tick = {True: "✓", False: ""}
    lines = [
        f"Measured {results['date']} (`{results['command']}`), seeds {results['seeds']}, "
        f"{results['wall_time_s'] / 60:.1f} min in all; {results['machine']}.",
        "",
        "| row | PBH | MSF | P⊕ | P⊖ | BIPO | seeds | multi-person R1 | multi-person mAP | "
        "single-person R1 | single-person R1, empty prompt | all R1 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, agg in results["rows"].items():
        row = ROWS[key]
        own = agg.get("prompted") or agg["empty"]
        flags = " | ".join(
            tick[f] for f in (row.pbh, row.msf, row.positive, row.negative, row.bipo)
        )
        lines.append(
            f"| {key} {row.label} | {flags} | {agg['seeds']} | "
            f"{_cell(own['multi_person']['rank1'])} | {_cell(own['multi_person']['mAP'])} | "
            f"{_cell(own['single_person']['rank1'])} | "
            f"{_cell(agg['empty']['single_person']['rank1'])} | {_cell(own['all']['rank1'])} |"
        )
    for key in CURVE_ROWS:
        if key not in results["rows"]:
            continue
        lines += [
            "",
            f"Row {key}, target keypoints removed (Rank-1, mean ± std):",
            "",
            "| removed | all | multi-person | single-person |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {100 * p['fraction']:.0f} % | {_cell(p['all']['rank1'])} | "
            f"{_cell(p['multi_person']['rank1'])} | {_cell(p['single_person']['rank1'])} |"
            for p in results["rows"][key]["drop_curve"]
        ]
    return "\n".join(lines) + "\n"


def plot_prompt_optionality(results: dict[str, Any], path: Path) -> None:
    """Fig. 5: Rank-1 of rows 8 / 8d vs the share of target keypoints removed, per query group,
    with row 6 (trained without prompts) as the constant line; bands = ± std over the seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = results["rows"]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8), sharey=True)
    colours = {"8": "tab:red", "8d": "tab:orange"}
    for ax, group in zip(axes, GROUPS):
        for key in CURVE_ROWS:
            if key not in rows:
                continue
            curve = rows[key]["drop_curve"]
            x = [100 * p["fraction"] for p in curve]
            mean = [p[group]["rank1"]["mean"] for p in curve]
            std = [p[group]["rank1"]["std"] for p in curve]
            ax.plot(x, mean, "o-", color=colours[key], label=f"row {key}: {ROWS[key].label}")
            ax.fill_between(
                x,
                [m - s for m, s in zip(mean, std)],
                [m + s for m, s in zip(mean, std)],
                color=colours[key],
                alpha=0.2,
            )
        if "6" in rows:
            base = rows["6"]["empty"][group]["rank1"]
            ax.axhline(
                base["mean"], color="tab:blue", ls="--", label="row 6: trained without prompts"
            )
            ax.axhspan(
                base["mean"] - base["std"], base["mean"] + base["std"], color="tab:blue", alpha=0.1
            )
        ax.set_title(f"{group.replace('_', '-')} queries", fontsize=9)
        ax.set_xlabel("target keypoints removed from each prompt (%)")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("Rank-1 (%)")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=3, fontsize=8)
    seeds = {key: rows[key]["seeds"] for key in (*CURVE_ROWS, "6") if key in rows}
    fig.suptitle(
        "Prompt optionality on the synthetic benchmark: mean ± std over "
        + ", ".join(f"{n} seed(s) of row {key}" for key, n in seeds.items()),
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _keys(text: str, choices: dict[str, Any], parser: argparse.ArgumentParser, flag: str) -> list:
    keys = [k.strip() for k in text.split(",") if k.strip()]
    unknown = sorted(set(keys) - set(choices))
    if unknown or not keys:
        parser.error(f"{flag}: unknown value(s) {unknown or keys}; choose from {','.join(choices)}")
    return [k for k in choices if k in keys]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (data + training)")
    parser.add_argument(
        "--rows", default=",".join(ROWS), help="comma-separated rows (default: all)"
    )
    parser.add_argument("--out", type=Path, default=Path("runs/ablation"))
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads (default: torch's); 1 lets two runs with different --rows share "
        "2 cores without oversubscription, and a last run with all rows collects them",
    )
    parser.add_argument(
        "--collect",
        action="store_true",
        help="train nothing: tabulate the (seed, row) results already in --out, per row the "
        "seeds it has",
    )
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--seeds: expected comma-separated integers, got {args.seeds!r}")
    rows = _keys(args.rows, ROWS, parser, "--rows")
    machine = machine_facts()
    print(machine, flush=True)
    start = time.perf_counter()
    progress = sys.stderr.isatty()
    per_row: dict[str, list[dict[str, Any]]] = {key: [] for key in rows}
    for seed in seeds:
        data = args.out / f"data_seed{seed}"
        if not args.collect:
            ensure_dataset(data, demo_dataset_config(seed), progress)
        for key in rows:
            result = run_row(key, seed, data, args.out, progress, train=not args.collect)
            if result is not None:
                per_row[key].append(result)
    per_row = {key: runs for key, runs in per_row.items() if runs}
    results = {
        "date": datetime.date.today().isoformat(),
        "command": shlex.join(["python", *sys.argv]),
        "machine": machine,
        "seeds": seeds,
        "wall_time_s": round(time.perf_counter() - start, 1),
        "rows": {key: aggregate(runs) for key, runs in per_row.items()},
        "per_seed": per_row,
    }
    write_text_atomic(args.out / "results.json", json.dumps(results, indent=2))
    table = markdown(results)
    write_text_atomic(args.out / "results.md", table)
    if any(key in per_row for key in CURVE_ROWS):
        plot_prompt_optionality(results, args.out / "prompt_optionality.png")
    print()
    print(table)
    print(f"results in {args.out / 'results.json'}, {args.out / 'results.md'}")


if __name__ == "__main__":
    main()
