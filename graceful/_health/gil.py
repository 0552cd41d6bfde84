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

That alone left probes of a loop busy in 5 ms slices waiting 25 ms at the median and
0.2-0.6 s at p99 (bench_health, on a quiet machine): when the forced switch comes, the
GIL often goes to this thread or back to the loop, not to the server. So while the
server has work, this thread also lowers the interpreter's switch interval to
``FAST_SWITCH``: the server's own wait then times out after 0.5 ms, shorter than the
loop's slices, and the server asks for the GIL itself. The median fell to 1.5 ms, the
p99 to 7-9 ms. The app's interval (5 ms by default) is put back as soon as the server
is idle, unless the app set another one meanwhile; an idle server changes nothing.
"""

from __future__ import annotations

import select
import sys
import threading
import time
from collections.abc import Callable

from .lag import start_daemon

PERIOD = 0.001
FAST_SWITCH = 0.0005
"""The switch interval while the server has work (the app's own, 5 ms by default, is
put back as soon as it has none)."""
JOIN_TIMEOUT = 1.0
"""How long the server's thread waits, at its end, for this one to leave ``poll``
before it closes the descriptor polled (it leaves at once: see ``Nudger.stop``)."""


class Nudger:
    """The second waiter for the server whose selector is ``fd`` and which says
    ``busy()`` while it handles what its ``select`` returned.

    An idle nudger sleeps in ``poll`` with no timeout. It used to wake every second
    to notice a closed server (closing a descriptor does not wake a ``poll`` on it in
    another thread): an idle app's one wake-up a second. Now the server's thread
    tells it instead, see :meth:`stop`."""

    def __init__(self, fd: int, busy: Callable[[], bool]) -> None:
        self._fd = fd
        self._busy = busy
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="graceful-health-gil", daemon=True)
        start_daemon(self._thread)

    def stop(self) -> None:
        """End the thread and wait for it (bounded). The server's thread calls this at
        its end, before it closes the selector, and with its wake-up byte unread: the
        selector is then readable, so the ``poll`` returns and sees the flag."""
        self._stopping = True
        self._thread.join(JOIN_TIMEOUT)

    def _run(self) -> None:
        poller = select.poll()
        poller.register(self._fd, select.POLLIN)
        hurry = _Hurry()
        try:
            self._nudge(poller, hurry)
        finally:
            hurry.off()

    def _nudge(self, poller: select.poll, hurry: _Hurry) -> None:
        while not self._stopping:
            if self._busy():
                hurry.on()
                time.sleep(PERIOD)
                continue
            try:
                ready = poller.poll(0) if hurry.saved is not None else []
                if not ready:
                    hurry.off()
                    ready = poller.poll()
            except OSError:  # the descriptor was closed: the server is gone
                return
            if any(events & (select.POLLNVAL | select.POLLERR) for _fd, events in ready):
                return
            if ready and not self._stopping:
                hurry.on()
                time.sleep(PERIOD)


class _Hurry:
    """The interpreter's switch interval, lowered while the server has work."""

    def __init__(self) -> None:
        self.saved: float | None = None  # the app's interval while ours is set

    def on(self) -> None:
        if self.saved is None:
            current = sys.getswitchinterval()
            if current > FAST_SWITCH:
                self.saved = current
                sys.setswitchinterval(FAST_SWITCH)

    def off(self) -> None:
        saved, self.saved = self.saved, None
        if saved is not None and abs(sys.getswitchinterval() - FAST_SWITCH) < 1e-6:
            sys.setswitchinterval(saved)  # unless the app set its own meanwhile
