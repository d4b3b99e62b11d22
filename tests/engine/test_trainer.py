import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tiny_training import tiny_overrides
from kpr.checkpoint import load_model
from kpr.engine.config import load_train_config
from kpr.engine.trainer import Trainer, TrainingDivergedError
from kpr.errors import ConfigError
from kpr.recipes import list_recipes, resolve_recipe


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_train_evaluate_checkpoint(tiny_synthetic, tmp_path):
    config = load_train_config(None, tiny_overrides(tiny_synthetic, tmp_path / "run", epochs=2) + ["eval.prompts=both", "eval.visualize=1"])
    result = Trainer(config, device="cpu", progress=False).fit()
    final = result.evaluations[1]
    for mode in ("keypoints", "empty"):
        assert 0.0 <= final[mode]["all"]["rank1"] <= 1.0 and 0.0 < final[mode]["all"]["mAP"] <= 1.0
        assert "multi_person" in final[mode]
    assert list((tmp_path / "run" / "rankings" / "keypoints").glob("*.png"))
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert set(results["evaluations"]["1"]) == {"keypoints", "empty"}
    reloaded = load_model(result.last_checkpoint)
    assert reloaded.config.num_classes == 6
    with pytest.raises(ConfigError, match="exists"):
        Trainer(config, device="cpu", progress=False).fit()

    from kpr.cli import main

    out = tmp_path / "eval"
    assert main(["eval", "--checkpoint", str(result.last_checkpoint), "--prompts", "keypoints", "--out", str(out),
                 f"dataset.root={tiny_synthetic}", "dataset.options={verbose: false}", "eval.visualize=0"]) == 0
    evaluated = json.loads((out / "results.json").read_text())["results"]["keypoints"]
    assert evaluated["all"]["rank1"] == pytest.approx(final["keypoints"]["all"]["rank1"])
    assert main(["eval", "--checkpoint", str(result.last_checkpoint), "--prompts", "keypoints", "--out", str(out),
                 f"dataset.root={tiny_synthetic}", "dataset.options={verbose: false}", "eval.visualize=0",
                 "eval.rerank=true"]) == 0
    reranked = json.loads((out / "results.json").read_text())["results"]["keypoints"]
    assert 0.0 < reranked["all"]["mAP"] <= 1.0


def test_resume_after_a_kill_matches_an_uninterrupted_run(tiny_synthetic, tmp_path):
    straight = Trainer(load_train_config(None, tiny_overrides(tiny_synthetic, tmp_path / "a", epochs=2)), device="cpu", progress=False)
    straight.fit()

    config = load_train_config(None, tiny_overrides(tiny_synthetic, tmp_path / "b", epochs=2))
    killed = Trainer(config, device="cpu", progress=False)
    original = killed.train_epoch

    def train_then_die(epoch, writer):
        if epoch == 1:
            raise KeyboardInterrupt
        return original(epoch, writer)

    killed.train_epoch = train_then_die
    with pytest.raises(KeyboardInterrupt):
        killed.fit()
    resumed = Trainer(config, device="cpu", progress=False)
    resumed.fit(resume=True)
    assert resumed.start_epoch == 1
    expected, got = _weights(straight.model), _weights(resumed.model)
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], atol=1e-6, rtol=1e-5, msg=key)

    other = load_train_config(None, tiny_overrides(tiny_synthetic, tmp_path / "b", epochs=2) + ["augmentation.bipo_p=0.9"])
    with pytest.raises(ConfigError, match="different config"):
        Trainer(other, device="cpu", progress=False).fit(resume=True)


def test_nan_loss_stops_with_step_paths_and_checkpoint(tiny_synthetic, tmp_path):
    trainer = Trainer(load_train_config(None, tiny_overrides(tiny_synthetic, tmp_path / "nan")), device="cpu", progress=False)
    with torch.no_grad():
        trainer.model.head.reduce_parts[0].weight.fill_(float("nan"))
    with pytest.raises(TrainingDivergedError, match=r"at step 0; batch images: \[.*\.png"):
        trainer.fit()
    assert (tmp_path / "nan" / "checkpoints" / "last_good" / "model.safetensors").is_file()


@pytest.mark.parametrize("recipe", [r for r in list_recipes() if r.startswith("official/")])
def test_official_recipe_runs_one_step_at_toy_size(recipe, tiny_synthetic, tmp_path):
    # Real recipe, toy widths: the backbone shrunk, the dataset replaced by a tiny synthetic one.
    base = load_train_config(resolve_recipe(recipe))
    backbone = base.model_overrides.get("backbone", {})
    shrink = "{embed_dim: 16, depths: [1, 1, 1, 1], num_heads: [1, 1, 2, 2], pretrained: null}"
    config = load_train_config(resolve_recipe(recipe), [
        f"model_overrides.backbone={shrink}" if backbone else f"model_overrides={{backbone: {shrink}}}",
        "dataset={name: synthetic, root: %s, options: {verbose: false}}" % tiny_synthetic,
        "sampler={ids_per_batch: 2, instances_per_id: 2, workers: 0}", f"output_dir={tmp_path}",
    ])
    trainer = Trainer(config, device="cpu", progress=False)
    assert trainer.model.config.image_size == base_size(recipe)
    before = _weights(trainer.model)
    trainer._set_fixbase(0)
    trainer.sampler.set_epoch(0)
    values = trainer._step(next(iter(trainer.loader)), accumulate=1, do_step=True)
    assert torch.isfinite(torch.tensor(values["loss"])) and values["part_prediction"] > 0
    changed = [k for k, v in trainer.model.state_dict().items() if not torch.equal(v, before[k])]
    assert any(k.startswith("backbone.") for k in changed) and any(k.startswith("head.") for k in changed)
    frozen = config.optim.fixbase_epochs > 0
    assert any(k.startswith("prompt_encoder.") for k in changed) is not frozen


def base_size(recipe):
    return (384, 128) if "solider" in recipe or "imagenet_market" in recipe else (256, 128)


def test_two_process_gloo_training_keeps_ranks_in_sync(tiny_synthetic, tmp_path):
    script = Path(__file__).with_name("ddp_worker.py")
    env = {**os.environ, "KPR_DDP_ROOT": str(tiny_synthetic), "KPR_DDP_OUT": str(tmp_path), "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29517",
                    str(script)], check=True, env=env, timeout=600, capture_output=True)
    digests = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert digests[0]["weights"] == pytest.approx(digests[1]["weights"], rel=1e-6)
    assert digests[0]["batches"] == digests[1]["batches"] > 0
    assert digests[0]["first_pids"] != digests[1]["first_pids"]  # ranks see different batches
    assert (tmp_path / "run" / "checkpoints" / "last" / "model.safetensors").is_file()
