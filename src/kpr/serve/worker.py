"""The bounded queue in front of the model: one worker thread, at most ``capacity`` jobs.

A job is a callable run on the worker thread; its result or exception goes to its own future, so
concurrent requests never share inputs or outputs. One thread runs the model because the model
already uses every core (torch intra-op threads): more would only contend. When ``capacity`` jobs
are waiting or running, :meth:`ModelQueue.submit` refuses at once (the server answers 503)
instead of letting a backlog grow without bound.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TypeVar

T = TypeVar("T")


class QueueFull(RuntimeError):
    """``capacity`` jobs are already waiting or running."""


class ModelQueue:
    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError(f"queue capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self._slots = threading.BoundedSemaphore(capacity)
        self._jobs: queue.SimpleQueue[tuple[Callable[[], object], Future] | None] = (
            queue.SimpleQueue()
        )
        self._pending = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="kpr-model", daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        """Jobs waiting or running."""
        with self._lock:
            return self._pending

    def submit(self, job: Callable[[], T]) -> Future[T]:
        """Queue ``job``; raises :class:`QueueFull` when ``capacity`` jobs are in."""
        if not self._slots.acquire(blocking=False):
            raise QueueFull(f"the model queue is full ({self.capacity} requests in progress)")
        with self._lock:
            self._pending += 1
        future: Future[T] = Future()
        self._jobs.put((job, future))
        return future

    def _run(self) -> None:
        while (item := self._jobs.get()) is not None:
            job, future = item
            try:
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(job())
                    except BaseException as exc:  # the request's error, reported to that request
                        future.set_exception(exc)
            finally:
                with self._lock:
                    self._pending -= 1
                self._slots.release()

    def close(self) -> None:
        """Finish the queued jobs, then stop the worker."""
        self._jobs.put(None)
        self._thread.join()
