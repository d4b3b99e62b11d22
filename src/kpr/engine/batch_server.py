"""One data pipeline feeding several side-by-side trainings that draw the same batches.

Recipes that differ only in what they do with a batch — the demo's KPR and its baseline: the same
dataset, seed, sampler and augmentations, only one of them building prompts — draw identical
samples, since every sample's randomness comes from the sampler's seed
(:class:`~kpr.data.sampler.IdentitySampler`) and a prompt is a sample's last draw. A server process
loads each batch once and sends it to every training of its group through a bounded queue (the
tensors in shared memory); a training that builds no prompt gets the batch without them. Where the
trainings share the CPU cores this saves one pipeline's work per extra training (≈ 10 % of a demo
training's CPU time). In a thread of the parent process instead, the server competed with the
queues' feeder threads for one interpreter lock and the demo was no faster.

The server only builds batches; :mod:`kpr.engine.side_by_side` starts it and each training reads
its :class:`BatchFeed`.
"""

from __future__ import annotations

import json
import queue as queue_module
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from torch.utils.data import DataLoader, IterableDataset

from kpr.configuration import to_dict
from kpr.data.prompt_dropout import PromptDropout
from kpr.data.train_dataset import TrainBatch, collate_train
from kpr.engine.config import TrainConfig
from kpr.engine.train_data import build_train_data, open_train_dataset, recipe_data_config
from kpr.errors import KPRError

__all__ = ["BatchFeed", "batches_key", "serve_batches", "sharing_groups"]

# Batches a server may build ahead of the slowest training of its group.
AHEAD = 4


@dataclass(frozen=True)
class _Batch:
    epoch: int
    batch: TrainBatch


@dataclass(frozen=True)
class _EpochEnd:
    epoch: int


@dataclass(frozen=True)
class _Failed:
    message: str


def batches_key(config: TrainConfig) -> str | None:
    """What decides a recipe's training batches apart from its prompts, as a JSON string; None
    when no other recipe's pipeline can serve it (mask prompts: the masks are augmented with the
    image, so they change its draws)."""
    data = recipe_data_config(config)
    if data.prompt_type != "keypoints":
        return None
    ds = config.dataset
    return json.dumps(
        {
            "dataset": [ds.name, str(Path(ds.root).expanduser().resolve()), to_dict(ds.options)],
            "seed": config.seed,
            "sampler": [config.sampler.ids_per_batch, config.sampler.instances_per_id],
            "epochs": config.optim.epochs,
            "data": to_dict(replace(data, with_prompts=False, prompt_dropout=PromptDropout())),
        },
        sort_keys=True,
        default=str,
    )


def sharing_groups(configs: Mapping[str, TrainConfig]) -> list[list[str]]:
    """Runs that one batch server can feed: groups of at least two runs (in ``configs`` order)
    with the same :func:`batches_key`, whose runs that train with prompts build the same ones."""
    by_key: dict[str, list[str]] = {}
    for name, config in configs.items():
        key = batches_key(config)
        if key is not None:
            by_key.setdefault(key, []).append(name)
    groups = []
    for names in by_key.values():
        prompted = {configs[n].prompt_dropout for n in names if configs[n].train_prompts}
        if len(names) > 1 and len(prompted) <= 1:
            groups.append(names)
    return groups


def server_config(configs: Sequence[TrainConfig]) -> TrainConfig:
    """The recipe a group's server builds its batches from: a run's that trains with prompts
    (they build the same ones), else the first's."""
    return next((c for c in configs if c.train_prompts), configs[0])


class BatchFeed(IterableDataset[TrainBatch]):
    """One training's end of a batch server: iterating gives the current epoch's batches.

    ``alive`` is polled while waiting (False: the training stops with ``SystemExit``), so that a
    training whose parent was killed does not wait for batches forever.
    """

    def __init__(self, channel: Any, alive: Callable[[], bool] | None = None):
        self.channel = channel
        self.alive = alive
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[TrainBatch]:
        while True:
            message = self._next()
            if isinstance(message, _Failed):
                raise KPRError(f"batch server: {message.message}")
            if message.epoch != self.epoch:
                raise KPRError(f"batch server sent epoch {message.epoch} during epoch {self.epoch}")
            if isinstance(message, _EpochEnd):
                return
            yield message.batch

    def _next(self) -> _Batch | _EpochEnd | _Failed:
        while True:
            try:
                return self.channel.get(timeout=1.0)
            except queue_module.Empty:
                if self.alive is not None and not self.alive():
                    raise SystemExit(1) from None


def new_channel(context: Any) -> Any:
    """A bounded queue from a server to one training."""
    return context.Queue(maxsize=AHEAD)


def serve_batches(
    config: TrainConfig,
    feeds: Sequence[tuple[Any, bool]],
    alive: Callable[[], bool] | None = None,
) -> None:
    """Build ``config``'s batches for every epoch and put each on every feed's channel —
    ``(channel, with_prompts)``; a training without prompts gets ``prompts=None`` — followed by an
    end-of-epoch marker. A failure is sent to every feed as a message (the trainings raise it).
    ``alive`` is polled while a channel is full (False: stop)."""

    def put(channel: Any, message: object) -> None:
        while True:
            try:
                channel.put(message, timeout=1.0)
                return
            except queue_module.Full:
                if alive is not None and not alive():
                    raise SystemExit(1) from None

    try:
        data = build_train_data(config, open_train_dataset(config), recipe_data_config(config))
        loader = DataLoader(data.train_set, batch_sampler=data.sampler, collate_fn=collate_train)
        for epoch in range(config.optim.epochs):
            data.sampler.set_epoch(epoch)
            for batch in loader:
                bare = replace(batch, prompts=None)
                for channel, with_prompts in feeds:
                    put(channel, _Batch(epoch, batch if with_prompts else bare))
            for channel, _ in feeds:
                put(channel, _EpochEnd(epoch))
    except Exception as exc:
        for channel, _ in feeds:
            put(channel, _Failed(f"{type(exc).__name__}: {exc}"))
        if not isinstance(exc, KPRError):
            raise
