import logging

import pytest
import torch
from tiny_training import tiny_overrides

from kpr.engine.batch_server import batches_key, sharing_groups
from kpr.engine.config import load_train_config
from kpr.engine.side_by_side import threads_per_run, train_side_by_side
from kpr.errors import KPRError


@pytest.mark.parametrize(
    ("cores", "runs", "threads"), [(2, 2, 1), (8, 2, 4), (1, 2, 1), (3, 2, 1), (4, 1, 4)]
)
def test_threads_per_run_split_the_cores(cores, runs, threads):
    assert threads_per_run(cores, runs) == threads


def test_two_runs_train_side_by_side_and_log_to_their_directories(tiny_synthetic, tmp_path):
    configs = {
        name: load_train_config(None, tiny_overrides(tiny_synthetic, tmp_path / name))
        for name in ("first", "second")
    }
    configs["second"] = load_train_config(
        None, tiny_overrides(tiny_synthetic, tmp_path / "second") + ["train_prompts=false"]
    )
    results = train_side_by_side(configs, cores=2, progress=False)
    assert list(results) == ["first", "second"]
    for name, result in results.items():
        assert result.output_dir == tmp_path / name
        assert result.epochs_run == 1 and set(result.evaluations) == {0}
        assert (result.last_checkpoint / "model.safetensors").is_file()
        assert "epoch 1/1" in (tmp_path / name / "train.log").read_text()
    # The runs differ (one trained with prompts): each result is its own run's.
    first, second = (results[n].evaluations[0] for n in ("first", "second"))
    assert first != second


def test_a_failing_run_is_named_and_the_other_stopped(tiny_synthetic, tmp_path):
    good = load_train_config(None, tiny_overrides(tiny_synthetic, tmp_path / "good", epochs=50))
    bad = load_train_config(None, tiny_overrides(tmp_path / "missing", tmp_path / "bad"))
    with pytest.raises(KPRError, match=r"training bad failed: .*missing"):
        train_side_by_side({"good": good, "bad": bad}, cores=2, progress=False)
    log = tmp_path / "good" / "train.log"
    assert "epoch 50/50" not in (log.read_text() if log.exists() else "")  # stopped early


def test_runs_need_their_own_output_directories(tiny_synthetic, tmp_path):
    config = load_train_config(None, tiny_overrides(tiny_synthetic, tmp_path / "same"))
    with pytest.raises(KPRError, match="own output_dir"):
        train_side_by_side({"a": config, "b": config}, cores=2, progress=False)


def test_trainer_calls_on_batch_after_every_step(tiny_synthetic, tmp_path):
    from kpr.engine.trainer import Trainer

    calls = []
    config = load_train_config(None, tiny_overrides(tiny_synthetic, tmp_path / "run", epochs=2))
    trainer = Trainer(config, device="cpu", progress=False, on_batch=lambda: calls.append(1))
    trainer.fit()
    planned = sum(trainer.sampler.batches_in_epoch(e) for e in range(2))
    assert len(calls) == planned == trainer.global_step


def test_the_progress_bar_counts_every_batch_of_both_runs(tiny_synthetic, tmp_path, capsys):
    configs = {
        name: load_train_config(None, tiny_overrides(tiny_synthetic, tmp_path / name, epochs=2))
        for name in ("a", "b")
    }
    train_side_by_side(configs, cores=2, progress=True)
    bar = capsys.readouterr().err.replace("\r", "\n").strip().splitlines()
    final = [line for line in bar if line.startswith("training a + b: 100%")]
    assert final, bar[-3:]
    done, total = final[-1].split("|")[2].split()[0].split("/")
    assert done == total and int(total) > 0
    assert any(line.startswith("a: epoch 2/2") for line in bar)
    assert any(line.startswith("b: epoch 2/2") for line in bar)


def _kpr_and_baseline(root, out, epochs=2, extra=()):
    """The demo's pair at toy size: KPR with prompts, BIPO and prompt dropout, and its baseline."""
    common = ["augmentation={bipo_p: 0.5, pad: 4}", *extra]
    return {
        "kpr": load_train_config(
            None,
            tiny_overrides(root, out / "kpr", epochs) + [*common, "prompt_dropout={alone_p: 0.5}"],
        ),
        "base": load_train_config(
            None, tiny_overrides(root, out / "base", epochs) + [*common, "train_prompts=false"]
        ),
    }


def test_shared_batches_train_exactly_as_batches_loaded_by_each_run(
    tiny_synthetic, tmp_path, caplog
):
    from safetensors.torch import load_file

    # One thread per run throughout (on 2 cores the run that ends last goes on with 2 threads,
    # whose products round differently, at a moment that depends on timing).
    shared = _kpr_and_baseline(tiny_synthetic, tmp_path / "shared")
    assert sharing_groups(shared) == [["kpr", "base"]]
    with caplog.at_level(logging.INFO, logger="kpr.engine.side_by_side"):
        one = train_side_by_side(shared, cores=1, progress=False)
    assert "kpr, base: batches from one server" in caplog.text
    own = train_side_by_side(
        _kpr_and_baseline(tiny_synthetic, tmp_path / "own"),
        cores=1,
        progress=False,
        share_batches=False,
    )
    for name in ("kpr", "base"):
        a = load_file(one[name].last_checkpoint / "model.safetensors")
        b = load_file(own[name].last_checkpoint / "model.safetensors")
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a), name
        assert one[name].evaluations == own[name].evaluations
    # Not the same training twice: the baseline's batches came without the prompts.
    assert one["kpr"].evaluations != one["base"].evaluations


def test_a_bad_file_in_shared_batches_fails_every_run_of_the_server_naming_it(
    tiny_synthetic, tmp_path
):
    import shutil

    root = tmp_path / "data"
    shutil.copytree(tiny_synthetic, root)
    broken = sorted((root / "images" / "train").iterdir())[0]
    broken.write_bytes(b"not an image")
    configs = _kpr_and_baseline(
        root, tmp_path / "runs", extra=["dataset.options={verbose: false, verify: false}"]
    )
    with pytest.raises(
        KPRError, match=rf"training (kpr|base) failed: .*batch server: .*{broken.name}"
    ):
        train_side_by_side(configs, cores=2, progress=False)


@pytest.mark.parametrize(
    ("change", "shared"),
    [
        ([], True),
        (["seed=2"], False),
        (["augmentation={bipo_p: 0.1, pad: 4}"], False),
        (["sampler={ids_per_batch: 2, instances_per_id: 2, workers: 0}"], False),
        (["optim.epochs=3"], False),
        (["optim.lr=0.5", "eval.batch_size=8"], True),  # what the trainings do with the batches
        (["train_prompts=true", "prompt_dropout={alone_p: 0.2}"], False),  # other prompts
        (["train_prompts=true", "prompt_dropout={alone_p: 0.5}"], True),
    ],
)
def test_runs_share_a_server_when_their_batches_are_the_same(
    tiny_synthetic, tmp_path, change, shared
):
    configs = _kpr_and_baseline(tiny_synthetic, tmp_path)
    configs["base"] = load_train_config(
        None,
        tiny_overrides(tiny_synthetic, tmp_path / "base", 2)
        + ["augmentation={bipo_p: 0.5, pad: 4}", "train_prompts=false", *change],
    )
    assert sharing_groups(configs) == ([["kpr", "base"]] if shared else [])


def test_mask_prompt_runs_load_their_own_batches(tiny_synthetic, tmp_path):
    configs = _kpr_and_baseline(tiny_synthetic, tmp_path)
    masks = tiny_overrides(tiny_synthetic, tmp_path / "masks") + [
        "model_overrides={prompt_type: masks}"
    ]
    configs["masks"] = load_train_config(None, masks)
    assert batches_key(configs["masks"]) is None
    assert sharing_groups(configs) == [["kpr", "base"]]
