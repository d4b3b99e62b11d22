import pytest
from tiny_training import tiny_overrides

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
