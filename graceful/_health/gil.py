"""A second waiter for the GIL, so that the health server's thread is not starved by a
busy event loop.

CPython hands the GIL over on request: a thread that has waited ``switchinterval``
(5 ms) asks the holder to drop it. But the waiter's clock starts again each time the
GIL is released, and an asyncio loop releases it at every iteration (its ``select``
call) and takes it back before the woken waiter runs. A loop busy with Python code
that yields more often than every 5 ms therefore starves every other thread: measured
with the loop working in 1-5 ms slices, a request that the server answers in 0.3 ms
took up to 0.8 s (p99), and up to 3 s, on CPython 3.10-3.13 alike.

A release wakes only one waiter, so a second one keeps its clock, times out and
forces the switch. This thread is that second waiter, and only while the server has
work: from the moment the server's ``select`` has something to return (the thread
polls the server's own epoll descriptor, readable exactly then) until the server has
dealt with it (``busy()`` turns False), it sleeps ``PERIOD`` at a time, wanting the GIL
after each sleep. While the server is idle it blocks in ``poll`` and costs nothing.
Lowering the interpreter's switch interval would work too, but it is the app's
setting, and it would slow every thread all the time.
"""

from __future__ import annotations

import select
import threading
import time
from collections.abc import Callable

from .lag import start_daemon

PERIOD = 0.001
CHECK_CLOSED = 1.0
"""Poll timeout: closing a descriptor does not wake a ``poll`` on it in another thread.
It also bounds a probe's wait on a busy loop when this thread is not woken by the
server's descriptor (seen in bench_health: answers of about 1 s, the p99 with a 1 s
heartbeat; see the note at ``lag.MAX_INTERVAL``)."""


def start_nudger(fd: int, busy: Callable[[], bool], closed: Callable[[], bool]) -> threading.Thread:
    """Start the second waiter for the server whose selector is ``fd`` and which says
    ``busy()`` while it handles what its ``select`` returned; it ends soon after
    ``closed()`` turns True."""
    thread = threading.Thread(
        target=_nudge, args=(fd, busy, closed), name="graceful-health-gil", daemon=True
    )
    start_daemon(thread)
    return thread


def _nudge(fd: int, busy: Callable[[], bool], closed: Callable[[], bool]) -> None:
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while not closed():
        if busy():
            time.sleep(PERIOD)
            continue
        try:
            ready = poller.poll(CHECK_CLOSED * 1000)
        except OSError:  # the descriptor was closed: the server is gone
            return
        if any(events & (select.POLLNVAL | select.POLLERR) for _fd, events in ready):
            return
        if ready:
            time.sleep(PERIOD)
