"""Torch files are read without running code, and errors say what happened (issue 7).

A pickle that names code is *refused*, naming the global; bytes that are no torch file at all
(random, truncated, text) are *not readable*. Neither message repeats torch's advice to load the
file with ``weights_only=False``.
"""

import os
import pickle
import random
from pathlib import Path

import pytest
import torch

from kpr.checkpoint import load_model
from kpr.checkpoint.official import read_official_checkpoint
from kpr.checkpoint.weight_files import safe_torch_load
from kpr.errors import CheckpointError

FIXTURES = Path(__file__).parents[1] / "fixtures"
CKPT_A = FIXTURES / "model_A" / "checkpoint_official_format.pth.tar"
SYSTEM = f"{os.system.__module__}.system"  # 'posix.system' on Linux


def exploit(marker: Path) -> object:
    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    return Exploit()


def torch_zip(path: Path, marker: Path) -> None:
    torch.save({"state_dict": {"w": torch.zeros(1)}, "config": exploit(marker)}, path)


def plain_pickle(path: Path, marker: Path) -> None:
    # Protocol 2, as torch's own legacy format: torch's weights-only reader parses it far enough
    # to meet the global (it cannot parse the frames of protocols >= 4 at all).
    path.write_bytes(pickle.dumps({"config": exploit(marker)}, protocol=2))


@pytest.mark.parametrize("write", [torch_zip, plain_pickle])
def test_a_pickle_that_runs_code_is_refused_naming_the_global_and_runs_nothing(tmp_path, write):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth.tar"
    write(path, marker)
    with pytest.raises(CheckpointError) as refused:
        read_official_checkpoint(path)
    message = str(refused.value)
    assert message.startswith(f"{path}: refused:")
    assert f"'{SYSTEM}'" in message and "never unpickles code" in message
    assert "weights_only" not in message and "will likely succeed" not in message
    with pytest.raises(CheckpointError, match=rf"refused: .*'{SYSTEM}'"):
        load_model(path)
    assert not marker.exists()


def random_bytes(seed: int) -> bytes:
    return random.Random(seed).randbytes(4096)


UNREADABLE = {
    **{f"random bytes {seed}": random_bytes(seed) for seed in range(4)},
    "empty": b"",
    "text": b"model weights are in the other folder\n",
    "truncated zip": CKPT_A.read_bytes()[:100_000],
    "truncated end of zip": CKPT_A.read_bytes()[:-100],
}


@pytest.mark.parametrize("content", UNREADABLE.values(), ids=UNREADABLE.keys())
def test_bytes_that_are_no_torch_file_are_not_readable_rather_than_refused(tmp_path, content):
    path = tmp_path / "broken.pth.tar"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as error:
        load_model(path)
    message = str(error.value)
    assert message.startswith(f"{path}: not a readable torch checkpoint (")
    assert "refused" not in message and "weights_only" not in message


def test_a_cut_global_name_is_corruption_not_a_refusal(tmp_path):
    # A legacy-format file cut inside the name of its tensor rebuilder reads as an unknown
    # global ``torch._utils._rebuild_te``: torch refuses it, but it is no code, only damage.
    legacy = tmp_path / "legacy.pt"
    torch.save({"w": torch.zeros(2)}, legacy, _use_new_zipfile_serialization=False)
    data = legacy.read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: data.index(b"_rebuild_tensor") + len("_rebuild_te") + 1])
    with pytest.raises(CheckpointError, match=r"cut\.pt: not a readable torch checkpoint"):
        safe_torch_load(cut)
    garbled = tmp_path / "garbled.pt"
    garbled.write_bytes(data.replace(b"torch._utils", b"torch._utiws"))
    with pytest.raises(CheckpointError, match=r"garbled\.pt: not a readable torch checkpoint"):
        safe_torch_load(garbled)
    assert safe_torch_load(legacy)["w"].shape == (2,)
