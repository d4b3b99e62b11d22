"""Atomic writes honour the umask (issue 7: outputs were created 0600 and directories 0700;
session 9: gallery index shards, written by safetensors, still were)."""

import os
import stat

import pytest
import torch
from safetensors.torch import save_file

from kpr import io_utils
from kpr.io_utils import (
    atomic_path,
    current_umask,
    exchange_paths,
    make_temp_dir,
    replace_path,
    write_text_atomic,
)


@pytest.fixture
def set_umask():
    previous = os.umask(0o022)
    yield os.umask
    os.umask(previous)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize(
    ("umask", "file_mode", "dir_mode"),
    [
        (0o022, 0o644, 0o755),
        (0o077, 0o600, 0o700),
        (0o002, 0o664, 0o775),
    ],
)
def test_new_files_and_directories_get_the_umasks_permissions(
    tmp_path, set_umask, umask, file_mode, dir_mode
):
    set_umask(umask)
    assert current_umask() == umask
    assert current_umask() == umask  # reading it did not change it
    write_text_atomic(tmp_path / "results.json", "{}")
    assert mode(tmp_path / "results.json") == file_mode
    with atomic_path(tmp_path / "figure.png") as tmp:
        tmp.write_bytes(b"png")
    assert mode(tmp_path / "figure.png") == file_mode
    with atomic_path(tmp_path / "shard.safetensors") as tmp:
        save_file({"x": torch.zeros(2)}, str(tmp))  # replaces the file, 0600 whatever the umask
    assert mode(tmp_path / "shard.safetensors") == file_mode
    assert mode(make_temp_dir(tmp_path, prefix=".x.")) == dir_mode


def test_the_umask_is_read_without_proc_too(tmp_path, set_umask, monkeypatch):
    monkeypatch.setattr(io_utils, "_PROC_STATUS", str(tmp_path / "no-proc"))
    set_umask(0o027)
    assert current_umask() == 0o027
    assert os.umask(0o022) == 0o027  # the round trip restored it


def test_replacing_a_file_keeps_its_permissions(tmp_path, set_umask):
    path = tmp_path / "keys.json"
    path.write_text("old")
    os.chmod(path, 0o600)
    write_text_atomic(path, "new")
    assert path.read_text() == "new" and mode(path) == 0o600
    assert os.listdir(tmp_path) == ["keys.json"]


def test_exchange_swaps_a_file_and_a_directory(tmp_path):
    (tmp_path / "a").write_text("file")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "inside").write_text("dir")
    if not exchange_paths(tmp_path / "a", tmp_path / "b"):
        pytest.skip("renameat2(RENAME_EXCHANGE) is not available here")
    assert (tmp_path / "a" / "inside").read_text() == "dir"
    assert (tmp_path / "b").read_text() == "file"


@pytest.mark.parametrize("atomic", [True, False])
def test_replace_path_returns_where_the_old_target_went(tmp_path, monkeypatch, atomic):
    if not atomic:
        monkeypatch.setattr(io_utils, "exchange_paths", lambda a, b: False)
    (tmp_path / "new").write_text("new")
    (tmp_path / "target").write_text("old")
    old = replace_path(tmp_path / "new", tmp_path / "target")
    assert (tmp_path / "target").read_text() == "new" and old.read_text() == "old"


def test_a_directory_that_cannot_hold_files_is_named_not_the_temporary_file():
    # /proc refuses new files: the error named "/proc/.e.npz.jq7kaytz".
    with pytest.raises(OSError) as caught, atomic_path("/proc/e.npz"):
        pass
    assert caught.value.filename == "/proc/e.npz" and ".tmp" not in str(caught.value)
