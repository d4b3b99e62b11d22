"""The glibc allocator settings: freed activation-sized tensors stay in the process's heap."""

from __future__ import annotations

import json
import platform
import subprocess
import sys

from kpr.allocator import tune_cpu_allocator

# Eight 12 MiB tensors alive at once (a forward's saved activations), then all freed (after the
# backward); prints glibc's mallinfo2 of the heap afterwards.
SAVE_AND_FREE = """
import ctypes, json, sys, torch
from kpr.allocator import tune_cpu_allocator
if sys.argv[1] == "tuned":
    assert tune_cpu_allocator()
saved = [torch.empty(12 << 18).fill_(1.0) for _ in range(8)]
del saved
class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]
mallinfo2 = ctypes.CDLL(None).mallinfo2
mallinfo2.restype = MallInfo2
info = mallinfo2()
print(json.dumps({"heap_free_mib": info.fordblks / 2**20}))
"""


def _heap_after(mode: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", SAVE_AND_FREE, mode], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def test_tuning_applies_on_glibc() -> None:
    assert platform.libc_ver()[0] == "glibc"  # the machines kpr is tested on
    assert tune_cpu_allocator() is True
    assert tune_cpu_allocator() is True  # idempotent


def test_freed_tensors_stay_in_the_heap_only_when_tuned() -> None:
    default, tuned = _heap_after("default"), _heap_after("tuned")
    # By default each 12 MiB tensor is a fresh mmap, returned to the system when freed: the next
    # step faults its pages in again. Tuned, the 96 MiB come from the heap and stay there free.
    assert default["heap_free_mib"] < 16
    assert tuned["heap_free_mib"] >= 90
