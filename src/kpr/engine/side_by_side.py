"""Independent trainings run side by side, one process each, the CPU cores split between them.

A small model trains inefficiently on several threads: its matrix products are too small to keep
two cores busy, and a loader worker's CPU time makes OpenMP's barriers stall (the demo's tiny Swin
trained at 50–60 images/s on 2 threads, 32–33 per run with two runs of one thread each, 65 in all;
docs/performance.md). Runs that draw the same batches (the demo's KPR and baseline) get them
from one batch server process (:mod:`kpr.engine.batch_server`). Each run logs to
``<output_dir>/train.log``; the caller sees one progress bar over all runs and their epoch lines.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import queue as queue_module
import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from kpr.engine.batch_server import (
    BatchFeed,
    new_channel,
    serve_batches,
    server_config,
    sharing_groups,
)
from kpr.engine.config import TrainConfig
from kpr.engine.trainer import Trainer, TrainResult
from kpr.errors import KPRError
from kpr.interrupts import Terminated, sigterm_unwinds

log = logging.getLogger(__name__)

__all__ = ["available_cores", "threads_per_run", "train_side_by_side"]


def available_cores() -> int:
    """Cores this process may run on (the affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def threads_per_run(cores: int, runs: int) -> int:
    """Torch threads for each of ``runs`` side-by-side runs on ``cores`` cores (at least 1)."""
    return max(1, cores // max(runs, 1))


@dataclass(frozen=True)
class _Start:
    name: str
    batches: int


@dataclass(frozen=True)
class _Tick:
    name: str


@dataclass(frozen=True)
class _Line:
    name: str
    text: str


@dataclass(frozen=True)
class _Done:
    name: str
    result: TrainResult | None
    error: str | None


class _LineHandler(logging.Handler):
    def __init__(self, name: str, channel: Any):
        super().__init__(logging.INFO)
        self.run_name, self.channel = name, channel

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING or record.getMessage().startswith("epoch "):
            self.channel.put(_Line(self.run_name, record.getMessage()))


def _train_one(
    name: str, config: TrainConfig, cores: int, active: Any, channel: Any, batches: Any
) -> None:
    """Child process: one training on its share of ``cores`` (``active`` = runs still going),
    reporting through ``channel``, its batches from a batch server's queue ``batches`` or, if
    None, loaded in this process."""
    import cv2
    import torch

    from kpr.allocator import tune_cpu_allocator
    from kpr.denormals import flush_denormals

    tune_cpu_allocator()
    flush_denormals()

    def share_cores() -> None:
        threads = threads_per_run(cores, active.value)
        if threads != torch.get_num_threads():
            torch.set_num_threads(threads)
            cv2.setNumThreads(threads)  # OpenCV's own pool would compete with the other run

    share_cores()
    out = Path(config.output_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        logfile = open(out / "train.log", "a", encoding="utf-8")  # noqa: SIM115 (process lifetime)
        sys.stdout = sys.stderr = logfile
        root = logging.getLogger()
        root.handlers[:] = [logging.StreamHandler(logfile), _LineHandler(name, channel)]
        root.handlers[0].setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        root.setLevel(logging.INFO)
        parent = mp.parent_process()

        def on_batch() -> None:
            if parent is not None and not parent.is_alive():  # killed: don't train on as an orphan
                raise SystemExit(1)
            share_cores()  # a run that finished leaves its cores to the others
            channel.put(_Tick(name))

        feed = None
        if batches is not None:
            feed = BatchFeed(batches, alive=lambda: parent is None or parent.is_alive())
        trainer = Trainer(config, device="cpu", progress=False, on_batch=on_batch, batches=feed)
        epochs = range(trainer.start_epoch, config.optim.epochs)
        channel.put(_Start(name, sum(trainer.sampler.batches_in_epoch(e) for e in epochs)))
        with sigterm_unwinds():  # the parent's terminate(): remove half-written checkpoints
            result = trainer.fit()
        with active.get_lock():
            active.value -= 1
        channel.put(_Done(name, result, None))
    except Terminated:
        logging.getLogger(__name__).info("training %s terminated", name)
    except KPRError as exc:
        channel.put(_Done(name, None, f"{type(exc).__name__}: {exc}"))
    except Exception as exc:  # reported to the parent, which raises; the traceback is in the log
        logging.getLogger(__name__).exception("training %s failed", name)
        where = out / "train.log"
        channel.put(_Done(name, None, f"{type(exc).__name__}: {exc} (traceback in {where})"))


def _serve(config: TrainConfig, feeds: list[tuple[Any, bool]], stop: Any, channel: Any) -> None:
    """Child process: a batch server (:mod:`kpr.engine.batch_server`) on one thread, its warnings
    (skipped samples) reported through ``channel``; it stays until ``stop`` is set, for the
    trainings map the batches' shared memory from this process when they read them."""
    import cv2
    import torch

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    root = logging.getLogger()
    root.handlers[:] = [_LineHandler("batches", channel)]
    root.setLevel(logging.INFO)
    parent = mp.parent_process()

    def alive() -> bool:
        return parent is None or parent.is_alive()

    try:
        serve_batches(config, feeds, alive)
    except Exception:  # already sent to the trainings, which fail with it
        logging.getLogger(__name__).exception("batch server failed")
    while not stop.wait(1.0):
        if not alive():
            return


def train_side_by_side(
    configs: Mapping[str, TrainConfig],
    *,
    cores: int | None = None,
    progress: bool = True,
    share_batches: bool = True,
) -> dict[str, TrainResult]:
    """Train every config at once, each in its own process with ``cores // len(configs)`` torch
    threads and its data loaded in that process (``sampler.workers = 0``) or, for runs that draw
    the same batches, by one batch server process; when a run ends, the others share its cores.

    Parameters
    ----------
    configs:
        {run name: config}; the output directories must differ.
    cores:
        Cores to share (default: :func:`available_cores`).
    progress:
        One progress bar over all runs' training batches, and each run's epoch lines.
    share_batches:
        Runs that draw the same batches (:func:`~kpr.engine.batch_server.sharing_groups`) get
        them from one batch server process instead of each loading its own; the trainings are
        the same either way.

    Returns
    -------
    {run name: TrainResult}. A run that fails raises :class:`KPRError` naming it once every run
    has ended (the others are stopped).
    """
    outputs = [Path(c.output_dir).resolve() for c in configs.values()]
    if len(set(outputs)) != len(outputs):
        raise KPRError("train_side_by_side: every run needs its own output_dir")
    cores = cores or available_cores()
    context = mp.get_context("spawn")  # fork would copy torch's thread pools and locks
    channel = context.Queue()
    active = context.Value("i", len(configs))
    stop = context.Event()
    feeds: dict[str, Any] = {}
    servers: dict[Any, list[str]] = {}
    for group in sharing_groups(configs) if share_batches else []:
        feeds.update({name: new_channel(context) for name in group})
        members = [(feeds[name], configs[name].train_prompts) for name in group]
        server = context.Process(
            target=_serve,
            args=(server_config([configs[n] for n in group]), members, stop, channel),
            name=f"kpr-batches-{'-'.join(group)}",
        )
        servers[server] = group
        log.info("%s: batches from one server", ", ".join(group))
    processes = {
        name: context.Process(
            target=_train_one,
            args=(
                name,
                replace(c, sampler=replace(c.sampler, workers=0)),
                cores,
                active,
                channel,
                feeds.get(name),
            ),
            name=f"kpr-train-{name}",
        )
        for name, c in configs.items()
    }
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=0, desc=f"training {' + '.join(configs)}", unit="batch")
    results: dict[str, TrainResult] = {}
    errors: dict[str, str] = {}
    try:
        for process in [*servers, *processes.values()]:
            process.start()
        while len(results) + len(errors) < len(processes):
            try:
                message = channel.get(timeout=1.0)
            except queue_module.Empty:
                # killed without reporting (out of memory, signal)
                for name, p in processes.items():
                    if not p.is_alive() and name not in results and name not in errors:
                        errors[name] = f"process exited with code {p.exitcode}"
                for server, group in servers.items():
                    for name in group:
                        if not server.is_alive() and name not in results and name not in errors:
                            errors[name] = f"its batch server exited with code {server.exitcode}"
                continue
            if isinstance(message, _Start):
                if bar is not None:
                    bar.total += message.batches
                    bar.refresh()
            elif isinstance(message, _Tick):
                if bar is not None:
                    bar.update(1)
            elif isinstance(message, _Line):
                text = f"{message.name}: {message.text}"
                if bar is not None:
                    bar.write(text, file=sys.stderr)
                else:
                    log.info("%s", text)
            elif message.error is not None:
                errors[message.name] = message.error
                for process in processes.values():
                    if process.is_alive():
                        process.terminate()
            else:
                results[message.name] = message.result
    finally:
        stop.set()
        for process in processes.values():
            if process.pid is None:  # never started
                continue
            if process.is_alive():
                process.terminate()
            process.join()
        for server in servers:
            if server.pid is None:
                continue
            server.join(timeout=5.0)
            if server.is_alive():
                server.terminate()
                server.join()
        if bar is not None:
            bar.close()
    if errors:
        first = next(iter(errors))
        raise KPRError(f"training {first} failed: {errors[first]}")
    return {name: results[name] for name in configs}
