"""P×K identity batch sampler (P identities × K images per batch), DDP-aware and resumable.

Design: :class:`IdentitySampler` is a *batch sampler*. Each batch is a list of :class:`SampleRef`
(dataset index, the pids of the whole batch, a per-sample seed), so the dataset can pick BIPO
occluders among the other identities of the same batch and draw its augmentations from a seed
that depends only on (sampler seed, epoch, position) — not on the number of workers. Use it as
``DataLoader(dataset, batch_sampler=sampler, collate_fn=...)``.

Per epoch (the official RandomIdentitySampler): each identity's indices are shuffled (identities
with fewer than K images are first sampled K times with replacement) and cut into chunks of K,
dropping the incomplete last chunk; then, while at least P identities have chunks left, P of them
are drawn at random and each gives its next chunk. With ``world_size`` > 1 every rank builds the
same global batch list and takes batches ``rank, rank + world_size, …``, truncated so that all
ranks get the same number.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np
from torch.utils.data import Sampler

from kpr.errors import ConfigError


class SampleRef(NamedTuple):
    """One slot of a batch: what the training dataset receives instead of a bare index."""

    index: int
    batch_pids: frozenset[int]
    seed: int


class IdentitySampler(Sampler[list[SampleRef]]):
    """Batches of P identities × K images, deterministic per (seed, epoch).

    Parameters
    ----------
    pids : sequence of int
        The identity of each dataset index.
    p, k : int
        Identities per batch and images per identity (batch size P·K).
    seed : int
    rank, world_size : int
        This process's slice of the global batch list under distributed training.

    Raises
    ------
    ConfigError
        If P or K < 1, there are fewer than P identities, or an epoch would give some rank no
        batch.
    """

    def __init__(
        self,
        pids: Sequence[int],
        p: int = 16,
        k: int = 4,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if p < 1 or k < 1:
            raise ConfigError(f"IdentitySampler: P and K must be >= 1, got P={p}, K={k}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ConfigError(f"IdentitySampler: invalid rank {rank} for world_size {world_size}")
        groups: dict[int, list[int]] = defaultdict(list)
        for index, pid in enumerate(pids):
            groups[int(pid)].append(index)
        if len(groups) < p:
            raise ConfigError(
                f"IdentitySampler: {len(groups)} identities cannot fill batches of P={p} "
                "identities; lower P or add identities"
            )
        self._groups = {pid: np.asarray(idx, np.int64) for pid, idx in sorted(groups.items())}
        self.p, self.k, self.seed = p, k, seed
        self.rank, self.world_size = rank, world_size
        self.epoch = 0
        self._start = 0
        self._position = 0
        self._cache: tuple[int, list[list[SampleRef]]] | None = None
        if len(self) == 0:
            raise ConfigError(
                f"IdentitySampler: an epoch gives {len(self._global_batches(0))} batches, "
                f"fewer than the {world_size} ranks"
            )

    @property
    def batch_size(self) -> int:
        return self.p * self.k

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose batches the next iteration yields (resets a resumed position
        unless it is the resumed epoch)."""
        if epoch != self.epoch:
            self._start = 0
        self.epoch = epoch

    def _global_batches(self, epoch: int) -> list[list[SampleRef]]:
        if self._cache is not None and self._cache[0] == epoch:
            return self._cache[1]
        rng = np.random.default_rng([self.seed, epoch])
        chunks: dict[int, list[np.ndarray]] = {}
        for pid, idx in self._groups.items():
            if len(idx) < self.k:
                idx = rng.choice(idx, size=self.k, replace=True)
            idx = rng.permutation(idx)
            n = len(idx) // self.k
            chunks[pid] = [idx[i * self.k : (i + 1) * self.k] for i in range(n)]
        available = sorted(chunks)
        batches: list[list[int]] = []
        batch_pids: list[frozenset[int]] = []
        while len(available) >= self.p:
            chosen = rng.choice(len(available), size=self.p, replace=False)
            picked = [available[i] for i in chosen]
            batch = [int(i) for pid in picked for i in chunks[pid].pop(0)]
            batches.append(batch)
            batch_pids.append(frozenset(picked))
            available = [pid for pid in available if chunks[pid]]
        seeds = rng.integers(0, 2**63 - 1, size=(len(batches), self.batch_size))
        refs = [
            [SampleRef(i, pids, int(s)) for i, s in zip(batch, row)]
            for batch, pids, row in zip(batches, batch_pids, seeds)
        ]
        self._cache = (epoch, refs)
        return refs

    def _rank_batches(self) -> list[list[SampleRef]]:
        everything = self._global_batches(self.epoch)
        per_rank = len(everything) // self.world_size
        return everything[self.rank :: self.world_size][:per_rank]

    def __len__(self) -> int:
        return self.batches_in_epoch(self.epoch)

    def batches_in_epoch(self, epoch: int) -> int:
        """This rank's batches in ``epoch`` (the count varies a little with each epoch's draw)."""
        return len(self._global_batches(epoch)) // self.world_size

    def __iter__(self) -> Iterator[list[SampleRef]]:
        batches = self._rank_batches()
        start, self._start = self._start, 0
        for position in range(start, len(batches)):
            self._position = position + 1
            yield batches[position]

    def state_dict(self, consumed: int | None = None) -> dict[str, Any]:
        """Where the current epoch stands, to resume the same batch sequence.

        Parameters
        ----------
        consumed : int, optional
            Batches of the epoch the training loop has used. Defaults to the number the sampler has
            yielded, which runs ahead of training when a DataLoader prefetches.
        """
        return {
            "epoch": self.epoch,
            "position": self._position if consumed is None else int(consumed),
            "seed": self.seed,
            "p": self.p,
            "k": self.k,
            "world_size": self.world_size,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume: the next iteration continues epoch ``state["epoch"]`` after its ``position``
        batches."""
        for key in ("seed", "p", "k", "world_size"):
            if state[key] != getattr(self, key):
                raise ConfigError(
                    f"IdentitySampler state has {key}={state[key]!r}, "
                    f"this sampler {getattr(self, key)!r}"
                )
        self.epoch = int(state["epoch"])
        self._start = self._position = int(state["position"])
