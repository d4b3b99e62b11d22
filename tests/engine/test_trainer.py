import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tiny_training import tiny_overrides

from kpr.checkpoint import load_model
from kpr.cli import main
from kpr.engine.config import load_train_config
from kpr.engine.schedule import warmup_cosine_lr
from kpr.engine.trainer import Trainer, TrainingDivergedError
from kpr.errors import ConfigError


def run_cli(*args: object) -> int:
    """``kpr ARGS…`` in-process; paths and numbers are passed as their text."""
    return main([str(a) for a in args])


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_train_evaluate_checkpoint(tiny_synthetic, tmp_path):
    config = load_train_config(
        None,
        tiny_overrides(tiny_synthetic, tmp_path / "run", epochs=2)
        + ["eval.prompts=both", "eval.visualize=1"],
    )
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
    with pytest.raises(ConfigError, match=r"last exists: continue that run with --resume"):
        Trainer(config, device="cpu", progress=False).fit()

    out = tmp_path / "eval"
    assert (
        run_cli(
            "eval",
            "--checkpoint",
            result.last_checkpoint,
            "--prompts",
            "keypoints",
            "--out",
            out,
            f"dataset.root={tiny_synthetic}",
            "dataset.options={verbose: false}",
            "eval.visualize=0",
        )
        == 0
    )
    evaluated = json.loads((out / "results.json").read_text())["results"]["keypoints"]
    assert evaluated["all"]["rank1"] == pytest.approx(final["keypoints"]["all"]["rank1"])
    rerank = [
        "eval",
        "--checkpoint",
        str(result.last_checkpoint),
        "--prompts",
        "keypoints",
        "--out",
        str(out),
        f"dataset.root={tiny_synthetic}",
        "dataset.options={verbose: false}",
        "eval.visualize=0",
        "eval.rerank=true",
    ]
    assert main(rerank) == 2  # results.json is not replaced without --overwrite
    assert json.loads((out / "results.json").read_text())["results"]["keypoints"] == evaluated
    assert main([*rerank, "--overwrite"]) == 0
    reranked = json.loads((out / "results.json").read_text())["results"]["keypoints"]
    assert 0.0 < reranked["all"]["mAP"] <= 1.0


@pytest.mark.parametrize(
    "optim",
    [[], ["optim.optimizer=adamw", "optim.lr=0.001", "optim.lr_update=step"]],
    ids=["sgd", "adamw_per_step"],
)
def test_resume_after_a_kill_matches_an_uninterrupted_run(tiny_synthetic, tmp_path, optim):
    straight = Trainer(
        load_train_config(None, tiny_overrides(tiny_synthetic, tmp_path / "a", epochs=2) + optim),
        device="cpu",
        progress=False,
    )
    straight.fit()

    config = load_train_config(
        None, tiny_overrides(tiny_synthetic, tmp_path / "b", epochs=2) + optim
    )
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

    other = load_train_config(
        None, tiny_overrides(tiny_synthetic, tmp_path / "b", epochs=2) + ["augmentation.bipo_p=0.9"]
    )
    with pytest.raises(ConfigError, match="different config"):
        Trainer(other, device="cpu", progress=False).fit(resume=True)


def test_per_step_schedule_and_adamw(tiny_synthetic, tmp_path):
    config = load_train_config(
        None,
        tiny_overrides(tiny_synthetic, tmp_path / "run", epochs=2)
        + ["optim.lr_update=step", "optim.optimizer=adamw", "optim.weight_decay=0.05"],
    )
    trainer = Trainer(config, device="cpu", progress=False)
    assert isinstance(trainer.optimizer, torch.optim.AdamW)
    assert trainer.optimizer.param_groups[0]["weight_decay"] == 0.05
    seen = []
    trainer.on_batch = lambda: seen.append(trainer.optimizer.param_groups[0]["lr"])
    trainer.fit()
    steps = [trainer.sampler.batches_in_epoch(e) for e in range(2)]
    assert len(seen) == sum(steps) and min(steps) > 2
    # The rate each step ran at: the official curve at that step's fractional epoch, rising through
    # the warm-up epoch (not min_lr for all of it) and reaching the peak at epoch 1.
    o = config.optim
    expected = [
        warmup_cosine_lr(e + i / steps[e], o.lr, o.min_lr, o.warmup_epochs, o.epochs)
        for e in range(2)
        for i in range(steps[e])
    ]
    assert seen == pytest.approx(expected)
    first = seen[: steps[0]]
    assert first[0] == pytest.approx(o.min_lr) and seen[steps[0]] == pytest.approx(o.lr)
    assert all(a < b for a, b in zip(first, first[1:]))


def _finite_state(directory):
    from kpr.checkpoint.kpr_format import read_kpr_checkpoint

    state = read_kpr_checkpoint(directory).state_dict
    assert all(torch.isfinite(t).all() for t in state.values() if t.is_floating_point())
    return state


def test_nan_weights_keep_the_last_finite_checkpoint(tiny_synthetic, tmp_path):
    """Weights that went NaN during an epoch: last_good is the previous epoch's finite state."""
    trainer = Trainer(
        load_train_config(None, tiny_overrides(tiny_synthetic, tmp_path / "nan", epochs=2)),
        device="cpu",
        progress=False,
    )
    original = trainer.train_epoch

    def poison_second_epoch(epoch, writer):
        if epoch == 1:
            with torch.no_grad():
                trainer.model.head.reduce_parts[0].weight.fill_(float("nan"))
        return original(epoch, writer)

    trainer.train_epoch = poison_second_epoch
    with pytest.raises(
        TrainingDivergedError,
        match=r"loss is nan at step \d+; batch images: \[.*\.png.*last finite state",
    ):
        trainer.fit()
    checkpoints = tmp_path / "nan" / "checkpoints"
    good, last = _finite_state(checkpoints / "last_good"), _finite_state(checkpoints / "last")
    assert good.keys() == last.keys() and all(torch.equal(good[k], last[k]) for k in good)


def test_nan_loss_with_finite_weights_saves_those_weights(tiny_synthetic, tmp_path, monkeypatch):
    trainer = Trainer(
        load_train_config(None, tiny_overrides(tiny_synthetic, tmp_path / "nan")),
        device="cpu",
        progress=False,
    )
    before = {
        k: v.detach().clone() for k, v in trainer.model.named_parameters()
    }  # BN statistics move in forward
    loss = trainer.loss
    monkeypatch.setattr(
        trainer, "loss", lambda *a: dataclasses.replace(loss(*a), total=torch.tensor(float("nan")))
    )
    with pytest.raises(TrainingDivergedError, match="at step 0"):
        trainer.fit()
    good = _finite_state(tmp_path / "nan" / "checkpoints" / "last_good")
    assert before and all(torch.equal(good[k], before[k]) for k in before)


def test_nan_from_the_start_saves_nothing(tiny_synthetic, tmp_path):
    trainer = Trainer(
        load_train_config(None, tiny_overrides(tiny_synthetic, tmp_path / "nan")),
        device="cpu",
        progress=False,
    )
    with torch.no_grad():
        trainer.model.head.reduce_parts[0].weight.fill_(float("nan"))
    with pytest.raises(TrainingDivergedError, match="no finite state was saved"):
        trainer.fit()
    assert not (tmp_path / "nan" / "checkpoints" / "last_good").exists()


def base_size(recipe):
    return (384, 128) if "solider" in recipe or "imagenet_market" in recipe else (256, 128)


def test_two_process_gloo_training_keeps_ranks_in_sync(tiny_synthetic, tmp_path):
    script = Path(__file__).with_name("ddp_worker.py")
    env = {
        **os.environ,
        "KPR_DDP_ROOT": str(tiny_synthetic),
        "KPR_DDP_OUT": str(tmp_path),
        "OMP_NUM_THREADS": "1",
    }
    subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node=2",
            "--master_port=29517",
            str(script),
        ],
        check=True,
        env=env,
        timeout=600,
        capture_output=True,
    )
    digests = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert digests[0]["weights"] == pytest.approx(digests[1]["weights"], rel=1e-6)
    assert digests[0]["batches"] == digests[1]["batches"] > 0
    assert digests[0]["first_pids"] != digests[1]["first_pids"]  # ranks see different batches
    assert (tmp_path / "run" / "checkpoints" / "last" / "model.safetensors").is_file()


def test_eval_needs_no_recipe_and_follows_the_recipes_prompts(tiny_synthetic, tmp_path, capsys):
    config = load_train_config(None, tiny_overrides(tiny_synthetic, tmp_path / "run"))
    checkpoint = Trainer(config, device="cpu", progress=False).fit().last_checkpoint
    out = tmp_path / "eval"
    assert (
        run_cli(
            "eval",
            "--checkpoint",
            checkpoint,
            "--dataset",
            "synthetic",
            "--root",
            tiny_synthetic,
            "--out",
            out,
            "eval.visualize=1",
            "eval.prompts=both",
        )
        == 0
    )
    results = json.loads((out / "results.json").read_text())["results"]
    assert set(results) == {"keypoints", "empty"}  # eval.prompts, not a hidden CLI default
    assert len(list((out / "rankings" / "keypoints").glob("*.png"))) == 1
    assert main(["eval", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "e2")]) == 2
    assert "which dataset?" in capsys.readouterr().err


def test_global_head_model_trains_without_part_losses_and_evaluates(tiny_synthetic, tmp_path):
    """The no-PBH ablation baseline: one embedding, identity + triplet loss, no ranking grids."""
    overrides = tiny_overrides(tiny_synthetic, tmp_path / "run", epochs=1)
    overrides[1] = overrides[1].replace("embedding_dim: 32}", "embedding_dim: 32, head: global}")
    config = load_train_config(None, overrides + ["eval.visualize=2"])
    trainer = Trainer(config, device="cpu", progress=False)
    before = _weights(trainer.model)
    result = trainer.fit()
    changed = [k for k, v in trainer.model.state_dict().items() if not torch.equal(v, before[k])]
    assert any(k.startswith("head.reduce_global") for k in changed)
    assert any(k.startswith("backbone.") for k in changed)
    assert 0.0 < result.evaluations[0]["keypoints"]["all"]["mAP"] <= 1.0
    assert not (tmp_path / "run" / "rankings").exists()
    assert load_model(result.last_checkpoint).config.head == "global"


def test_a_training_step_leaves_its_batch_unchanged(tiny_synthetic, tmp_path):
    # Side-by-side runs fed by one batch server read the same shared-memory batch.
    config = load_train_config(None, tiny_overrides(tiny_synthetic, tmp_path / "run"))
    trainer = Trainer(config, device="cpu", progress=False)
    trainer.sampler.set_epoch(0)
    batch = next(iter(trainer.loader))
    before = [t.clone() for t in (batch.images, batch.prompts, batch.target_masks, batch.pids)]
    weights = _weights(trainer.model)
    trainer._step(batch, accumulate=1, do_step=True)
    after = (batch.images, batch.prompts, batch.target_masks, batch.pids)
    assert all(torch.equal(a, b) for a, b in zip(before, after))
    assert any(
        not torch.equal(w, v) for w, v in zip(weights.values(), _weights(trainer.model).values())
    )
