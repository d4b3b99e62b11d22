"""``kpr demo``: the paper's claim on a laptop CPU.

Generates the synthetic multi-person benchmark, trains a compact KPR with prompts and BIPO, trains
the same model without prompts (the non-promptable baseline), and evaluates KPR with its prompts,
KPR with the empty prompt, and the baseline — overall, on the multi-person queries (where the
prompt says who the target is) and on the single-person queries (where none is needed).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path
from typing import Any

from kpr.engine.config import load_train_config
from kpr.engine.side_by_side import available_cores, train_side_by_side
from kpr.engine.trainer import Trainer, results_table
from kpr.errors import ConfigError
from kpr.io_utils import write_text_atomic
from kpr.recipes import resolve_recipe
from kpr.synthetic import SyntheticConfig, generate_synthetic_dataset

# 6 queries per test identity: 3 multi-person crops (the most cluttered) and 3 single-person ones.
DEMO_DATA = dict(num_images=3200, num_train_ids=100, num_test_ids=60, query_fraction=0.3)


def demo_dataset_config(seed: int) -> SyntheticConfig:
    return SyntheticConfig(seed=seed, **DEMO_DATA)


def ensure_dataset(directory: Path, config: SyntheticConfig, progress: bool) -> None:
    """Generate the dataset unless ``directory`` already holds exactly this one."""
    meta = directory / "dataset.json"
    if meta.is_file():
        params = json.loads(meta.read_text(encoding="utf-8")).get("generator", {}).get("params")
        if params == dataclasses.asdict(config):
            return
    summary = generate_synthetic_dataset(
        directory, config, workers=2, progress=progress, overwrite=True
    )
    print(summary.format_table())


def remove_training_run(run_dir: Path) -> None:
    """Delete a previous demo training run; refuse a directory that is not a kpr training run."""
    if not run_dir.exists():
        return
    if not (run_dir / "train_config.json").is_file():
        raise ConfigError(f"{run_dir}: exists and is not a kpr training run; choose another --out")
    shutil.rmtree(run_dir)


def _scores(summary: dict[str, Any]) -> dict[str, dict[str, float]]:
    return {
        group: {"rank1": s["rank1"], "mAP": s["mAP"]}
        for group, s in summary.items()
        if group in ("all", "multi_person", "single_person")
    }


def run_demo(
    out: str | Path = "runs/demo",
    seed: int = 0,
    progress: bool = True,
    overrides: tuple[str, ...] = (),
    cores: int | None = None,
) -> dict[str, Any]:
    """Run the demo and write ``<out>/results.json``; returns its content.

    With at least 2 cores (default: those available) the two trainings run side by side, each on
    half of them (:func:`~kpr.engine.side_by_side.train_side_by_side`); else one after the other.
    """
    start = time.perf_counter()
    out = Path(out)
    data = out / "data"
    ensure_dataset(data, demo_dataset_config(seed), progress)
    configs = {}
    for recipe in ("synthetic_kpr", "synthetic_baseline"):
        run_dir = out / recipe.removeprefix("synthetic_")
        remove_training_run(run_dir)
        configs[recipe.removeprefix("synthetic_")] = load_train_config(
            resolve_recipe(recipe),
            [
                f"dataset.root={data}",
                # The files were just written (or matched to the generator's parameters): not
                # decoded once more per run before training; the loader still names a bad one.
                "dataset.options.verify=false",
                f"output_dir={run_dir}",
                f"seed={seed}",
                *overrides,
            ],
        )
    cores = available_cores() if cores is None else cores
    if cores >= len(configs):
        trained = train_side_by_side(configs, cores=cores, progress=progress)
    else:
        trained = {
            name: Trainer(config, device="cpu", progress=progress).fit()
            for name, config in configs.items()
        }
    final = {name: result.evaluations[max(result.evaluations)] for name, result in trained.items()}
    summaries: dict[str, dict[str, Any]] = {
        "kpr": final["kpr"]["keypoints"],
        "kpr_empty_prompt": final["kpr"]["empty"],
        "baseline": final["baseline"]["empty"],
    }
    results = {
        "wall_time_s": round(time.perf_counter() - start, 1),
        "seed": seed,
        "cores": cores,
        "variants": {name: _scores(summary) for name, summary in summaries.items()},
    }
    write_text_atomic(out / "results.json", json.dumps(results, indent=2))
    print()
    print(results_table(summaries))
    print(headline(results["variants"]))
    print(
        f"wall time {results['wall_time_s']:.0f} s; rankings in {out / 'kpr' / 'rankings'}; "
        f"results in {out / 'results.json'}"
    )
    return results


def headline(variants: dict[str, dict[str, dict[str, float]]]) -> str:
    """The paper's claim in miniature, from ``results.json``'s variants: prompts win on
    multi-person queries; without a prompt KPR matches the baseline on single-person ones."""
    kpr, empty, base = (variants[k] for k in ("kpr", "kpr_empty_prompt", "baseline"))

    def r1(v: dict[str, dict[str, float]], group: str) -> float:
        return 100 * v[group]["rank1"]

    multi = r1(kpr, "multi_person") - r1(base, "multi_person")
    single = r1(empty, "single_person") - r1(base, "single_person")
    return (
        f"\nmulti-person queries: KPR with prompts {r1(kpr, 'multi_person'):.1f} Rank-1 vs "
        f"baseline {r1(base, 'multi_person'):.1f} ({multi:+.1f})\n"
        f"single-person queries: KPR without prompt {r1(empty, 'single_person'):.1f} Rank-1 vs "
        f"baseline {r1(base, 'single_person'):.1f} ({single:+.1f})"
    )
