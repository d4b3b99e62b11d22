"""SIGTERM unwinds through ``finally`` blocks inside ``sigterm_unwinds`` and nowhere else."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from kpr.interrupts import EXIT_CODE, Terminated, sigterm_unwinds


def test_sigterm_raises_terminated_inside_the_block_and_the_handler_is_restored():
    before = signal.getsignal(signal.SIGTERM)
    cleaned = []
    with pytest.raises(Terminated), sigterm_unwinds():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            signal.pthread_sigmask(signal.SIG_BLOCK, [])  # a point where the handler has run
            pytest.fail("SIGTERM did not interrupt the block")
        finally:
            cleaned.append(True)
    assert cleaned == [True]
    assert signal.getsignal(signal.SIGTERM) is before
    assert EXIT_CODE == 143


def test_outside_the_main_thread_the_handler_is_left_alone():
    before = signal.getsignal(signal.SIGTERM)
    seen = []

    def worker():
        with sigterm_unwinds():
            seen.append(signal.getsignal(signal.SIGTERM))

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen == [before]
