"""Official checkpoints load on numpy 1.x and 2.x (issue 12, item 5).

A pickled numpy scalar (the official files store ``rank1``, ``mAP``… as numpy scalars) names its
reconstructor by the numpy that wrote it: ``numpy.core.multiarray.scalar`` (numpy 1.x) or
``numpy._core.multiarray.scalar`` (numpy 2.x). Numpy 1.x has no ``numpy._core.multiarray``;
reading must work whichever numpy wrote the file and whichever is installed.

``numpy_1_layout`` makes the installed numpy look like numpy 1.x where it matters (no
``numpy._core.multiarray``, the function under ``numpy.core.multiarray``); ``make check-ranges``
also runs this file under a real numpy 1.x.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from kpr.checkpoint import load_model
from kpr.checkpoint.official import read_official_checkpoint
from kpr.checkpoint.weight_files import numpy_scalar_reconstructor

FIXTURES = Path(__file__).parents[1] / "fixtures"
CKPT_A = FIXTURES / "model_A" / "checkpoint_official_format.pth.tar"
NUMPY_1_NAME = b"numpy.core.multiarray\nscalar\n"
NUMPY_2_NAME = b"numpy._core.multiarray\nscalar\n"


@pytest.fixture()
def numpy_1_layout(monkeypatch):
    """numpy's modules arranged as in numpy 1.x: ``numpy._core.multiarray`` does not exist."""
    real_scalar = numpy_scalar_reconstructor()
    old = types.ModuleType("numpy.core.multiarray")
    old.scalar = real_scalar
    if hasattr(np, "_core"):
        monkeypatch.delattr(np._core, "multiarray", raising=False)
    monkeypatch.setitem(sys.modules, "numpy._core.multiarray", None)  # import raises ImportError
    monkeypatch.setitem(sys.modules, "numpy.core.multiarray", old)
    return real_scalar


def official_like_checkpoint(path: Path, scalar_name: bytes) -> Path:
    """A legacy-format torch file holding numpy scalars, as written by the numpy that
    ``scalar_name`` belongs to (the name is rewritten in the pickle stream)."""
    state = {
        "state_dict": {"module.w": torch.arange(3, dtype=torch.float32)},
        "epoch": np.int64(7),
        "rank1": np.float64(0.875),
        "mAP": np.float32(0.5),
    }
    torch.save(state, path, _use_new_zipfile_serialization=False)
    data = path.read_bytes()
    written = NUMPY_2_NAME if NUMPY_2_NAME in data else NUMPY_1_NAME
    assert written in data
    path.write_bytes(data.replace(written, scalar_name))
    return path


def test_the_scalar_reconstructor_is_numpys_own_under_both_names():
    scalar = numpy_scalar_reconstructor()
    assert scalar(np.dtype("float64"), np.float64(2.5).tobytes()) == 2.5
    major = int(np.__version__.split(".")[0])
    current = "numpy._core.multiarray" if major >= 2 else "numpy.core.multiarray"
    assert scalar is sys.modules[current].scalar


def test_numpy_1_layout_fixture_really_hides_the_numpy_2_module(numpy_1_layout):
    # What kpr did before the fix: the attribute path of numpy 2 fails here as on numpy 1.26.
    with pytest.raises(AttributeError, match="_core|multiarray"):
        np._core.multiarray.scalar  # noqa: B018
    assert numpy_scalar_reconstructor() is numpy_1_layout


@pytest.mark.parametrize("scalar_name", [NUMPY_1_NAME, NUMPY_2_NAME], ids=["numpy1", "numpy2"])
@pytest.mark.parametrize("layout", ["installed", "numpy1"])
def test_numpy_scalars_written_by_either_numpy_read_on_either(
    tmp_path, request, scalar_name, layout
):
    path = official_like_checkpoint(tmp_path / "ckpt.pth.tar", scalar_name)
    data = path.read_bytes()
    assert b"c" + scalar_name in data  # the GLOBAL opcode naming the reconstructor
    other = NUMPY_2_NAME if scalar_name == NUMPY_1_NAME else NUMPY_1_NAME
    assert other not in data
    if layout == "numpy1":
        request.getfixturevalue("numpy_1_layout")
    ckpt = read_official_checkpoint(path)
    assert ckpt.epoch == 7
    assert ckpt.metrics == {"rank1": 0.875, "mAP": 0.5}
    assert torch.equal(ckpt.state_dict["w"], torch.arange(3, dtype=torch.float32))


def test_the_official_fixture_loads_with_the_numpy_1_layout(numpy_1_layout):
    model = load_model(CKPT_A)
    assert sum(p.numel() for p in model.parameters()) > 0
    ckpt = read_official_checkpoint(CKPT_A)
    assert all(isinstance(v, float) for v in ckpt.metrics.values())
