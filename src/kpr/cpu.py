"""What this machine's CPU is: its model and the flags that decide kpr's fast paths."""

from __future__ import annotations

import platform
from dataclasses import dataclass
from pathlib import Path

CPU_FLAGS = ("avx512_bf16", "amx_bf16", "avx512_vnni", "avx_vnni", "amx_int8")


@dataclass(frozen=True)
class CpuFeatures:
    """The CPU's model name and the flags that decide which fast paths exist."""

    model: str
    flags: frozenset[str]

    @property
    def bf16(self) -> bool:
        """Native bf16 arithmetic (AVX-512 BF16 or AMX)."""
        return bool({"avx512_bf16", "amx_bf16"} & self.flags)

    @property
    def vnni(self) -> bool:
        """int8 dot products (AVX-512 VNNI, AVX-VNNI or AMX-INT8), what int8 GEMMs need."""
        return bool({"avx512_vnni", "avx_vnni", "amx_int8"} & self.flags)

    def describe(self) -> str:
        """One line for logs and benchmark output."""
        shown = " ".join(f"{f}={'yes' if f in self.flags else 'no'}" for f in CPU_FLAGS)
        return f"{self.model} ({shown})"


def parse_cpuinfo(text: str) -> CpuFeatures:
    """:class:`CpuFeatures` from the text of ``/proc/cpuinfo`` (first processor's entries)."""
    model, flags = "unknown CPU", frozenset[str]()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and model == "unknown CPU":
            model = value.strip()
        elif key == "flags" and not flags:
            flags = frozenset(value.split()) & frozenset(CPU_FLAGS)
    return CpuFeatures(model, flags)


def cpu_features(cpuinfo: str | Path = "/proc/cpuinfo") -> CpuFeatures:
    """This machine's CPU; without ``/proc/cpuinfo`` (macOS, Windows) no fast-path flag is set."""
    try:
        return parse_cpuinfo(Path(cpuinfo).read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return CpuFeatures(platform.processor() or platform.machine() or "unknown CPU", frozenset())
