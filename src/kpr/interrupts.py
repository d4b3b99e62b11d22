"""SIGTERM as an exception, so that the ``finally`` blocks removing temporary files run.

Python's default SIGTERM handler ends the process at once: a scheduler's or ``kill``'s SIGTERM
left half-written ``.tmp`` files and checkpoint directories behind.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

EXIT_CODE = 128 + signal.SIGTERM


class Terminated(BaseException):
    """Raised by SIGTERM inside :func:`sigterm_unwinds` (a ``BaseException``, like
    ``KeyboardInterrupt``, so ``except Exception`` does not swallow it)."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated


@contextlib.contextmanager
def sigterm_unwinds() -> Iterator[None]:
    """Turn SIGTERM into :class:`Terminated` inside the block (main thread only: signal handlers
    can only be set there), then restore the previous handler."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
