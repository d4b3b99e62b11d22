from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from kpr.data.file_cache import DecodedFileCache


@dataclasses.dataclass(frozen=True)
class Pair:
    first: np.ndarray
    second: np.ndarray
    name: str = "pair"


def counting_loader(value):
    calls = []

    def load():
        calls.append(1)
        return value

    return load, calls


def test_a_kept_value_is_loaded_once_and_made_read_only():
    cache = DecodedFileCache(1000)
    load, calls = counting_loader(np.zeros(10, np.float32))
    first = cache.get("a", load)
    assert cache.get("a", load) is first and len(calls) == 1
    assert not first.flags.writeable
    with pytest.raises(ValueError):
        first[0] = 1.0
    assert cache.used_bytes == 40 and len(cache) == 1


def test_dataclass_values_count_and_freeze_every_array():
    cache = DecodedFileCache(1000)
    pair = Pair(np.zeros(3), np.ones((2, 2), np.uint8))
    assert cache.get("p", lambda: pair) is pair
    assert cache.used_bytes == 3 * 8 + 4
    assert not pair.first.flags.writeable and not pair.second.flags.writeable


def test_values_beyond_the_budget_are_returned_but_not_kept_nor_frozen():
    cache = DecodedFileCache(100)
    kept = cache.get("a", lambda: np.zeros(20, np.float32))  # 80 bytes
    load, calls = counting_loader(np.zeros(8, np.float32))  # 32 more: over 100
    over = cache.get("b", load)
    cache.get("b", load)
    assert len(calls) == 2 and over.flags.writeable and cache.used_bytes == 80
    small = cache.get("c", lambda: np.zeros(5, np.float32))  # 20 more: fits
    assert not small.flags.writeable and not kept.flags.writeable and cache.used_bytes == 100


def test_a_zero_budget_keeps_nothing_and_a_failed_load_is_retried():
    cache = DecodedFileCache(0)
    load, calls = counting_loader(np.zeros(1))
    cache.get("a", load), cache.get("a", load)
    assert len(calls) == 2 and len(cache) == 0
    cache = DecodedFileCache(100)
    attempts = []

    def failing():
        attempts.append(1)
        raise OSError("unreadable")

    for _ in range(2):
        with pytest.raises(OSError):
            cache.get("bad", failing)
    assert len(attempts) == 2 and len(cache) == 0


def test_bad_budgets_and_values_are_refused():
    with pytest.raises(ValueError, match="budget_bytes"):
        DecodedFileCache(-1)
    with pytest.raises(TypeError, match="not an array"):
        DecodedFileCache(10).get("x", lambda: [1, 2])
