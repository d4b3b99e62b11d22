from __future__ import annotations

from collections import Counter

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import DataLoader, Dataset

from kpr.data.sampler import IdentitySampler, SampleRef
from kpr.errors import ConfigError


def make_pids(counts: list[int]) -> list[int]:
    return [pid for pid, n in enumerate(counts) for _ in range(n)]


PIDS = make_pids([1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 20] * 3)


def flat(batches) -> list[list[int]]:
    return [[ref.index for ref in batch] for batch in batches]


def test_batches_are_p_identities_times_k_images():
    sampler = IdentitySampler(PIDS, p=4, k=4, seed=0)
    batches = list(sampler)
    assert len(batches) == len(sampler) > 0
    for batch in batches:
        assert len(batch) == 16 == sampler.batch_size
        counts = Counter(PIDS[ref.index] for ref in batch)
        assert len(counts) == 4 and set(counts.values()) == {4}
        assert all(ref.batch_pids == frozenset(counts) for ref in batch)
        assert len({ref.seed for ref in batch}) == 16
        for pid in counts:
            idx = [ref.index for ref in batch if PIDS[ref.index] == pid]
            # only identities with fewer than K images (sampled with replacement) repeat one
            assert len(set(idx)) == 4 or PIDS.count(pid) < 4


def test_every_image_of_a_large_identity_is_used_at_most_once_per_epoch():
    sampler = IdentitySampler(PIDS, p=4, k=4, seed=1)
    used = Counter(i for batch in flat(sampler) for i in batch)
    big = {pid for pid, n in Counter(PIDS).items() if n >= 4}
    assert all(used[i] <= 1 for i in used if PIDS[i] in big)


def test_deterministic_per_epoch():
    a = IdentitySampler(PIDS, p=4, k=4, seed=3)
    b = IdentitySampler(PIDS, p=4, k=4, seed=3)
    assert list(a) == list(b)
    first = flat(a)
    a.set_epoch(1)
    assert flat(a) != first
    a.set_epoch(0)
    assert flat(a) == first
    assert flat(IdentitySampler(PIDS, p=4, k=4, seed=4)) != first


@pytest.mark.parametrize("world_size", [2, 3])
def test_ddp_ranks_get_disjoint_equal_slices_of_the_same_batches(world_size):
    full = flat(IdentitySampler(PIDS, p=2, k=4, seed=5))
    ranks = [
        flat(IdentitySampler(PIDS, p=2, k=4, seed=5, rank=r, world_size=world_size))
        for r in range(world_size)
    ]
    assert len({len(r) for r in ranks}) == 1 and len(ranks[0]) == len(full) // world_size
    seen = [tuple(b) for r in ranks for b in r]
    assert len(seen) == len(set(seen))
    assert set(seen) <= {tuple(b) for b in full}


def test_resume_continues_the_same_sequence():
    reference = IdentitySampler(PIDS, p=4, k=4, seed=6)
    reference.set_epoch(2)
    expected = list(reference)
    sampler = IdentitySampler(PIDS, p=4, k=4, seed=6)
    sampler.set_epoch(2)
    it = iter(sampler)
    consumed = [next(it) for _ in range(3)]
    state = sampler.state_dict()
    assert state["epoch"] == 2 and state["position"] == 3
    resumed = IdentitySampler(PIDS, p=4, k=4, seed=6)
    resumed.load_state_dict(state)
    resumed.set_epoch(2)
    assert consumed + list(resumed) == expected
    # the next epoch starts from the beginning again
    resumed.set_epoch(3)
    reference.set_epoch(3)
    assert list(resumed) == list(reference)
    # a training loop behind a prefetching loader passes what it really consumed
    assert sampler.state_dict(consumed=1)["position"] == 1


def test_resume_refuses_a_different_configuration():
    state = IdentitySampler(PIDS, p=4, k=4, seed=6).state_dict()
    with pytest.raises(ConfigError, match="p=4"):
        IdentitySampler(PIDS, p=2, k=4, seed=6).load_state_dict(state)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"p": 40}, "identities"),
        ({"p": 0}, "P and K"),
        ({"k": 0}, "P and K"),
        ({"rank": 2, "world_size": 2}, "rank"),
        ({"p": 11, "world_size": 64}, "ranks"),
    ],
)
def test_clear_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        IdentitySampler(PIDS, **kwargs)


class _Echo(Dataset):
    def __len__(self) -> int:
        return len(PIDS)

    def __getitem__(self, ref: SampleRef) -> tuple[int, int]:
        return ref.index, len(ref.batch_pids - {PIDS[ref.index]})


def test_works_as_a_dataloader_batch_sampler():
    sampler = IdentitySampler(PIDS, p=4, k=2, seed=0)
    loader = DataLoader(_Echo(), batch_sampler=sampler, collate_fn=torch.tensor)
    batches = list(loader)
    assert len(batches) == len(sampler)
    assert all(b.shape == (8, 2) and (b[:, 1] == 3).all() for b in batches)


@settings(max_examples=40, deadline=None)
@given(
    counts=st.lists(st.integers(1, 9), min_size=2, max_size=20),
    p=st.integers(1, 4),
    k=st.integers(1, 5),
    seed=st.integers(0, 100),
)
def test_property_pk_structure(counts, p, k, seed):
    pids = make_pids(counts)
    if len(counts) < p:
        with pytest.raises(ConfigError):
            IdentitySampler(pids, p=p, k=k, seed=seed)
        return
    sampler = IdentitySampler(pids, p=p, k=k, seed=seed)
    batches = list(sampler)
    assert len(batches) >= 1
    for batch in batches:
        per_pid = Counter(pids[ref.index] for ref in batch)
        assert len(per_pid) == p and set(per_pid.values()) == {k}
    # every identity contributes at most its number of K-chunks
    used = Counter(pids[ref.index] for batch in batches for ref in batch)
    assert all(used[pid] <= max(n, k) // k * k for pid, n in enumerate(counts))
    # the epoch stops only when fewer than P identities have a chunk left
    left = sum(max(n, k) // k - used[pid] // k > 0 for pid, n in enumerate(counts))
    assert left < p
