"""Decoded training files kept in memory between epochs, up to a byte budget."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")

__all__ = ["DecodedFileCache"]


def _arrays(value: Any) -> list[np.ndarray]:
    """The numpy arrays a cached value holds: itself, or a dataclass's array fields."""
    if isinstance(value, np.ndarray):
        return [value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = (getattr(value, f.name) for f in dataclasses.fields(value))
        return [a for a in fields if isinstance(a, np.ndarray)]
    raise TypeError(f"cannot cache a {type(value).__name__}: not an array or a dataclass of arrays")


class DecodedFileCache:
    """What ``load()`` returned for a key, kept while the cache holds at most ``budget_bytes``.

    Decoding a training image, its keypoint file and its checks costs about a third of the
    demo's data loading, and every epoch reads every file again. The first epoch fills the cache;
    once the budget is spent, further values are returned but not kept (no eviction: an epoch
    visits every sample, so a least-recently-used policy would evict each value before its
    reuse). A value whose load raises is not kept, so a bad file raises every time it is read.

    Kept arrays are made read-only: an augmentation that wrote into one would otherwise change
    the next epoch's input without a sign.
    """

    def __init__(self, budget_bytes: int):
        if budget_bytes < 0:
            raise ValueError(f"budget_bytes must be >= 0, got {budget_bytes}")
        self.budget_bytes = budget_bytes
        self.used_bytes = 0
        self._values: dict[Hashable, Any] = {}

    def __len__(self) -> int:
        return len(self._values)

    def get(self, key: Hashable, load: Callable[[], T]) -> T:
        """The value kept for ``key``, else ``load()`` (kept if it fits the budget)."""
        if key in self._values:
            return self._values[key]  # type: ignore[no-any-return]
        value = load()
        arrays = _arrays(value)
        size = sum(a.nbytes for a in arrays)
        if self.used_bytes + size <= self.budget_bytes:
            for a in arrays:
                a.flags.writeable = False
            self._values[key] = value
            self.used_bytes += size
        return value
