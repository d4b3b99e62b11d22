import csv
from dataclasses import dataclass
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@dataclass(frozen=True)
class DemoCrop:
    image: Path
    keypoints: Path  # the crop's keypoint file: its target and the other people in it
    pid: int


@dataclass(frozen=True)
class TrainedDemo:
    """A small KPR trained in this test session on a synthetic multi-person set, for the tests
    that need prompts to matter: its checkpoint directory, the test split's multi-person queries
    and its gallery."""

    model: Path
    queries: tuple[DemoCrop, ...]
    gallery: tuple[DemoCrop, ...]


# 64×32 crops, 60 training identities, 10 epochs of the demo recipe (AdamW, BIPO, prompt
# dropout): 2.3–2.5 min on 2 CPU cores. With seeds 0 / 1 / 2 the 40 multi-person queries found
# their identity first in 85.0 / 85.0 / 87.5 % of cases with their prompts and in 25.0 / 22.5 /
# 30.0 % with the empty prompt (the tests' predictor path); through the server, 34 / 35 of 40 with
# the prompt (seeds 1 / 2) against 3 / 1 with the prompt moved to the other person.
TRAINED_DEMO_DATA = dict(
    num_images=2000, num_train_ids=60, num_test_ids=10, image_height=64, image_width=32
)


@pytest.fixture(scope="session")
def trained_demo(tmp_path_factory) -> TrainedDemo:
    from kpr.allocator import tune_cpu_allocator
    from kpr.engine.config import load_train_config
    from kpr.engine.trainer import Trainer
    from kpr.recipes import resolve_recipe
    from kpr.synthetic import SyntheticConfig, generate_synthetic_dataset

    tune_cpu_allocator()  # as `kpr train` does: ×1.14 per training step
    root = tmp_path_factory.mktemp("trained_demo")
    data = root / "data"
    config = SyntheticConfig(seed=0, query_fraction=0.3, **TRAINED_DEMO_DATA)
    generate_synthetic_dataset(data, config, workers=2, progress=False)
    overrides = [
        f"dataset.root={data}",
        f"output_dir={root / 'run'}",
        "seed=0",
        "optim.epochs=10",
        f"model_overrides.image_size=[{config.image_height},{config.image_width}]",
        "eval.prompts=keypoints",
        "eval.visualize=0",
    ]
    result = Trainer(
        load_train_config(resolve_recipe("synthetic_kpr"), overrides), device="cpu", progress=False
    ).fit()

    def crop(row: dict[str, str]) -> DemoCrop:
        image = data / row["image"]
        keypoints = data / "keypoints" / row["split"] / f"{image.stem}.json"
        return DemoCrop(image, keypoints, int(row["pid"]))

    rows = list(csv.DictReader(open(data / "annotations.csv", encoding="utf-8")))
    queries = [r for r in rows if r["split"] == "query" and r["occlusion"] == "multi_person"]
    gallery = [r for r in rows if r["split"] == "gallery"]
    return TrainedDemo(
        result.best_checkpoint or result.last_checkpoint,
        tuple(map(crop, queries)),
        tuple(map(crop, gallery)),
    )
