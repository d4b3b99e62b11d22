"""Saving a kpr checkpoint never deletes or hides what kpr did not write (issue 7, defect 1)."""

import json
import os
import stat
from pathlib import Path

import pytest
import torch

from kpr import io_utils
from kpr.checkpoint.kpr_format import KPR_FILES, read_kpr_checkpoint, save_kpr_checkpoint
from kpr.errors import CheckpointError
from kpr.modeling.config import KPRConfig

CONFIG = KPRConfig()
REFUSED_DIRECTORY = "never deletes files it did not write, even with overwrite"


def save(path, value: float = 0.0, **kwargs) -> Path:
    return save_kpr_checkpoint(path, CONFIG, {"w": torch.full((3,), value)}, **kwargs)


def listing(root: Path) -> list[str]:
    """Every entry under ``root``, hidden ones included."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def weight(directory) -> float:
    return float(read_kpr_checkpoint(directory).state_dict["w"][0])


@pytest.fixture(params=["exchange", "rename aside"])
def swap(request, monkeypatch):
    """Run a test with the atomic exchange and with the fallback for systems without it."""
    if request.param == "rename aside":
        monkeypatch.setattr(io_utils, "exchange_paths", lambda a, b: False)


def test_a_previous_checkpoint_is_replaced_with_only_its_own_files_removed(tmp_path, swap):
    from kpr.engine.training_state import write_training_state

    save(tmp_path / "ckpt", 1.0, write_extra=lambda d: write_training_state(d, {"epoch": 3}))
    assert listing(tmp_path) == [
        "ckpt",
        "ckpt/config.json",
        "ckpt/model.safetensors",
        "ckpt/training_state.json",
        "ckpt/training_state.safetensors",
    ]
    assert save(tmp_path / "ckpt", 2.0) == tmp_path / "ckpt"
    assert weight(tmp_path / "ckpt") == 2.0
    assert listing(tmp_path) == ["ckpt", "ckpt/config.json", "ckpt/model.safetensors"]


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_directory_with_a_users_files_is_refused_and_left_alone(tmp_path, overwrite):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "cat.jpg").write_bytes(b"meow")
    before = listing(tmp_path)
    with pytest.raises(
        CheckpointError,
        match=rf"photos: exists and holds files kpr did not write "
        rf"\(cat\.jpg\).*{REFUSED_DIRECTORY}",
    ):
        save(photos, overwrite=overwrite)
    assert listing(tmp_path) == before
    assert (photos / "cat.jpg").read_bytes() == b"meow"


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_checkpoint_holding_a_users_file_is_refused(tmp_path, overwrite):
    save(tmp_path / "ckpt", 1.0)
    (tmp_path / "ckpt" / "notes.txt").write_text("lr sweep, best so far")
    before = listing(tmp_path)
    with pytest.raises(CheckpointError, match=rf"ckpt: .*\(notes\.txt\).*{REFUSED_DIRECTORY}"):
        save(tmp_path / "ckpt", 2.0, overwrite=overwrite)
    assert listing(tmp_path) == before and weight(tmp_path / "ckpt") == 1.0


def test_a_directory_of_another_tool_with_the_same_file_names_is_refused(tmp_path):
    # E.g. a Hugging Face model directory: config.json + model.safetensors, but not kpr's.
    other = tmp_path / "bert"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (other / "model.safetensors").write_bytes(b"weights")
    with pytest.raises(
        CheckpointError,
        match=r"bert: exists and is not a kpr checkpoint "
        r"\(config\.json lacks \"format\"",
    ):
        save(other, overwrite=True)
    assert (other / "model.safetensors").read_bytes() == b"weights"


def test_a_file_is_replaced_only_with_overwrite(tmp_path, swap):
    target = tmp_path / "out"
    target.write_text("precious")
    with pytest.raises(CheckpointError, match=r"out: exists and is a file; pass overwrite=True"):
        save(target)
    assert target.read_text() == "precious" and listing(tmp_path) == ["out"]
    save(target, 1.0, overwrite=True)
    assert weight(target) == 1.0
    assert listing(tmp_path) == ["out", "out/config.json", "out/model.safetensors"]


def test_a_special_file_is_refused_even_with_overwrite(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for overwrite in (False, True):
        with pytest.raises(CheckpointError, match="pipe: exists and is neither a regular file nor"):
            save(fifo, overwrite=overwrite)
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


def test_dot_is_refused_when_the_current_directory_holds_other_files(tmp_path, monkeypatch):
    (tmp_path / "data.csv").write_text("1,2\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CheckpointError, match=rf"{tmp_path}: exists and holds files .*data\.csv"):
        save(".")
    assert listing(tmp_path) == ["data.csv"]


def test_the_current_directory_is_not_replaced_from_under_the_user(tmp_path, monkeypatch):
    save(tmp_path / "ckpt", 1.0)
    monkeypatch.chdir(tmp_path / "ckpt")
    with pytest.raises(CheckpointError, match=r"ckpt: is the current directory"):
        save(".", 2.0)
    assert weight(".") == 1.0


def test_an_empty_directory_is_filled_in_place(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    os.chmod(empty, 0o750)
    inode = empty.stat().st_ino
    monkeypatch.chdir(empty)
    save(".", 1.0)
    assert weight(empty) == 1.0
    assert listing(tmp_path) == ["empty", "empty/config.json", "empty/model.safetensors"]
    assert empty.stat().st_ino == inode and stat.S_IMODE(empty.stat().st_mode) == 0o750


def test_a_link_to_a_checkpoint_replaces_the_checkpoint_and_keeps_the_link(tmp_path, swap):
    save(tmp_path / "run" / "best", 1.0)
    (tmp_path / "latest").symlink_to(tmp_path / "run" / "best")
    save(tmp_path / "latest", 2.0)
    assert (tmp_path / "latest").is_symlink() and weight(tmp_path / "run" / "best") == 2.0


def test_a_failed_write_keeps_the_previous_checkpoint_and_leaves_nothing(tmp_path):
    save(tmp_path / "ckpt", 1.0)
    before = listing(tmp_path)

    def fail(directory):
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        save(tmp_path / "ckpt", 2.0, write_extra=fail)
    assert listing(tmp_path) == before and weight(tmp_path / "ckpt") == 1.0


def test_extra_files_must_be_ones_kpr_recognises_later(tmp_path):
    with pytest.raises(CheckpointError, match=r"ckpt: write_extra wrote \['notes\.txt'\]"):
        save(tmp_path / "ckpt", write_extra=lambda d: (d / "notes.txt").write_text("x"))
    assert listing(tmp_path) == []


def test_the_trainers_training_state_files_are_recognised():
    from kpr.engine.training_state import JSON_FILE, TENSORS_FILE

    assert {JSON_FILE, TENSORS_FILE} <= KPR_FILES


@pytest.mark.parametrize(
    ("umask", "dir_mode", "file_mode"), [(0o022, 0o755, 0o644), (0o077, 0o700, 0o600)]
)
def test_a_checkpoint_gets_the_umasks_permissions(tmp_path, umask, dir_mode, file_mode):
    previous = os.umask(umask)
    try:
        directory = save(tmp_path / "ckpt")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(directory.stat().st_mode) == dir_mode
    for name in ("config.json", "model.safetensors"):
        assert stat.S_IMODE((directory / name).stat().st_mode) == file_mode, name


def test_the_prompt_type_is_stored_and_read_back(tmp_path):
    config = KPRConfig(prompt_type="masks")
    save_kpr_checkpoint(tmp_path / "ck", config, {"w": torch.zeros(1)})
    stored = json.loads((tmp_path / "ck" / "config.json").read_text())["model"]
    assert stored["prompt_type"] == "masks"
    assert read_kpr_checkpoint(tmp_path / "ck").config == config
    assert config.prompt_channels == 3


def test_a_config_written_before_prompt_types_loads_as_keypoints(tmp_path):
    save(tmp_path / "ck")
    path = tmp_path / "ck" / "config.json"
    document = json.loads(path.read_text())
    del document["model"]["prompt_type"]
    path.write_text(json.dumps(document))
    assert read_kpr_checkpoint(tmp_path / "ck").config.prompt_type == "keypoints"
    # any other missing setting is still refused
    del document["model"]["image_size"]
    path.write_text(json.dumps(document))
    with pytest.raises(CheckpointError, match=r"model\.image_size missing"):
        read_kpr_checkpoint(tmp_path / "ck")


def test_an_unknown_prompt_type_names_the_field(tmp_path):
    save(tmp_path / "ck")
    path = tmp_path / "ck" / "config.json"
    document = json.loads(path.read_text())
    document["model"]["prompt_type"] = "boxes"
    path.write_text(json.dumps(document))
    with pytest.raises(CheckpointError, match=r"model\.prompt_type: 'boxes' is not one of"):
        read_kpr_checkpoint(tmp_path / "ck")
