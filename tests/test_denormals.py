"""Subnormal floats flushed to zero in every thread of kpr's processes."""

from __future__ import annotations

import json
import platform
import subprocess
import sys

import pytest

# A batched product that MKL splits over both threads; each of its entries is subnormal
# (256 · 1e-20 · 1e-21 ≈ 2.6e-39 < 1.2e-38) unless flushed. Prints how many were flushed. (Set after
# the worker threads exist, PyTorch's setting reaches only the calling thread: half of them.)
PRODUCT = """
import json, sys, torch
torch.set_num_threads(2)
setup = sys.argv[1]
if setup == "flush":
    from kpr.denormals import flush_denormals
    assert flush_denormals()
elif setup == "cli":
    from kpr.cli import main
    missing = ["--checkpoint", "/no/m", "--images", "/no/c", "--out", "/no/e.npz"]
    assert main(["embed", *missing]) != 0
products = torch.full((64, 256, 256), 1e-20) @ torch.full((64, 256, 256), 1e-21)
print(json.dumps({"zeros": int((products == 0).sum()), "n": products.numel()}))
"""

pytestmark = pytest.mark.skipif(
    platform.machine() not in ("x86_64", "AMD64"), reason="FTZ/DAZ are x86 settings"
)


def _zeros(setup: str) -> tuple[int, int]:
    out = subprocess.run(
        [sys.executable, "-c", PRODUCT, setup], capture_output=True, text=True, check=True
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return result["zeros"], result["n"]


def test_without_flushing_the_products_are_subnormal():
    zeros, _ = _zeros("plain")
    assert zeros == 0


@pytest.mark.parametrize("setup", ["flush", "cli"])
def test_flushing_reaches_every_worker_thread(setup):
    # Set before the first parallel operation, the worker threads inherit it: every product,
    # whichever thread computed it, is zero.
    zeros, n = _zeros(setup)
    assert zeros == n
