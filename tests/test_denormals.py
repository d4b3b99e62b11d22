"""Subnormal floats flushed to zero in every thread of kpr's processes."""

from __future__ import annotations

import json
import platform
import subprocess
import sys

import pytest

# A batched product that MKL splits over both threads; each of its entries is subnormal
# (256 · 1e-20 · 1e-21 ≈ 2.6e-39 < 1.2e-38) unless flushed. Prints how many were flushed, and
# whether the main thread still flushes afterwards. (Set after the worker threads exist, PyTorch's
# setting reaches only the calling thread: half of them.)
PRODUCT = """
import json, sys, torch
from kpr.denormals import flush_denormals, subnormals_flushed
torch.set_num_threads(2)

def zeros():
    products = torch.full((64, 256, 256), 1e-20) @ torch.full((64, 256, 256), 1e-21)
    return {"zeros": int((products == 0).sum()), "n": products.numel()}

setup = sys.argv[1]
if setup == "flush":
    assert flush_denormals()
    result = zeros()
elif setup == "cli":  # measured inside a verb run by kpr.cli.main
    import kpr.cli
    seen = {}
    kpr.cli.cmd_info = lambda args: seen.update(zeros()) or 0
    assert kpr.cli.main(["info", "--checkpoint", "unused"]) == 0
    result = seen
else:
    result = zeros()
print(json.dumps({**result, "flushed_after": subnormals_flushed()}))
"""

pytestmark = pytest.mark.skipif(
    platform.machine() not in ("x86_64", "AMD64"), reason="FTZ/DAZ are x86 settings"
)


def _run(setup: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", PRODUCT, setup], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_without_flushing_the_products_are_subnormal():
    assert _run("plain")["zeros"] == 0


def test_flushing_reaches_every_worker_thread():
    # Set before the first parallel operation, the worker threads inherit it: every product,
    # whichever thread computed it, is zero.
    result = _run("flush")
    assert result["zeros"] == result["n"]


def test_the_cli_flushes_during_a_verb_and_gives_the_callers_mode_back():
    result = _run("cli")
    assert result["zeros"] == result["n"]
    assert result["flushed_after"] is False  # hypothesis refuses to run in a flushing process
