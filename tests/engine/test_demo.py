import json

import pytest

from kpr.engine import demo


@pytest.mark.parametrize("cores", [1, 2])  # one after the other / side by side
def test_demo_writes_results_in_the_documented_schema(tmp_path, monkeypatch, cores):
    monkeypatch.setattr(
        demo,
        "DEMO_DATA",
        dict(num_images=96, num_train_ids=6, num_test_ids=4, team_size=2, query_fraction=0.3),
    )
    tiny = [
        (
            "model_overrides={backbone: {name: solider_swin, embed_dim: 16, depths: [1, 1, 1, 1], "
            "num_heads: [1, 1, 2, 2]}, embedding_dim: 32}"
        ),
        "sampler={ids_per_batch: 3, instances_per_id: 2, workers: 0}",
        "optim.epochs=1",
        "eval.visualize=1",
    ]
    results = demo.run_demo(tmp_path, seed=5, progress=False, overrides=tuple(tiny), cores=cores)
    assert json.loads((tmp_path / "results.json").read_text()) == results
    assert results["seed"] == 5 and results["cores"] == cores and results["wall_time_s"] > 0
    assert set(results["variants"]) == {"kpr", "kpr_empty_prompt", "baseline"}
    for variant in results["variants"].values():
        for group in ("all", "multi_person", "single_person"):
            assert 0.0 <= variant[group]["rank1"] <= 1.0 and 0.0 <= variant[group]["mAP"] <= 1.0
    assert list((tmp_path / "kpr" / "rankings" / "keypoints").glob("*.png"))
    # Running again reuses the generated dataset when seed and size match.
    stamp = (tmp_path / "data" / "dataset.json").stat().st_mtime_ns
    demo.ensure_dataset(tmp_path / "data", demo.demo_dataset_config(5), progress=False)
    assert (tmp_path / "data" / "dataset.json").stat().st_mtime_ns == stamp


def test_headline_compares_kpr_with_the_baseline_per_query_kind():
    def scores(multi: float, single: float) -> dict[str, dict[str, float]]:
        return {"multi_person": {"rank1": multi}, "single_person": {"rank1": single}}

    text = demo.headline(
        {
            "kpr": scores(0.9, 0.95),
            "kpr_empty_prompt": scores(0.1, 0.6),
            "baseline": scores(0.2, 0.625),
        }
    )
    assert "KPR with prompts 90.0 Rank-1 vs baseline 20.0 (+70.0)" in text
    assert "KPR without prompt 60.0 Rank-1 vs baseline 62.5 (-2.5)" in text
