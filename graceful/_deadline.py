"""The one deadline of a shutdown, and the watchdog thread that enforces it.

The deadline is created at the first stop trigger. Every bounded wait of the
shutdown sequence asks it for ``time_left()``. It ends a safety margin before the
grace window does, so the process is gone before the orchestrator's SIGKILL.

The watchdog is the backstop for what no cooperative code can bound: a coroutine
that blocks the loop thread, a hook or import stuck in C code, a non-daemon thread
that never returns. It is a daemon thread started before the app is imported, so
arming it from a signal handler only sets an Event (starting a thread inside a
signal handler could deadlock on the threading module's own locks). When it
fires it writes one line with ``os.write`` (the logging locks may be held by the
stuck thread), SIGKILLs the app's descendants and calls ``os._exit``.
"""

from __future__ import annotations

import os
import threading
import time

# typing is not imported at run time: this module is loaded before the fork into
# the init, which should stay small (mypy treats TYPE_CHECKING as True).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable


MAX_MARGIN = 0.5
MARGIN_FRACTION = 0.25
KILL_RESERVE = 0.1
"""SIGKILL is sent this long before a deadline, to see the processes die within it."""


def safety_margin(grace: float) -> float:
    """How long before the end of the grace window the sequence must be done."""
    return min(MAX_MARGIN, grace * MARGIN_FRACTION)


class Deadline:
    """A point on the monotonic clock that every phase of the shutdown respects.

    ``at`` is when the shutdown sequence must be finished; ``hard_at``, half a margin
    later, is when the watchdog ends the process whatever it is doing.
    """

    def __init__(self, grace: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.grace = grace
        self.clock = clock
        self.started = clock()
        margin = safety_margin(grace)
        self.at = self.started + grace - margin
        self.hard_at = self.at + margin / 2

    def time_left(self) -> float:
        """Seconds until ``at``, never negative."""
        return max(0.0, self.at - self.clock())

    def elapsed(self) -> float:
        return self.clock() - self.started

    def expired(self) -> bool:
        return self.clock() >= self.at


class Watchdog:
    """Calls ``on_expire`` at ``deadline.hard_at`` unless closed before."""

    def __init__(self, on_expire: Callable[[], None]) -> None:
        self._on_expire = on_expire
        self._deadline: Deadline | None = None
        self._wake = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._watch, name="graceful-watchdog", daemon=True)
        self._thread.start()

    def arm(self, deadline: Deadline) -> None:
        """Start counting. Safe to call from a signal handler."""
        self._deadline = deadline
        self._wake.set()

    def close(self) -> None:
        """Stop watching; the process will not be ended by this watchdog."""
        self._closed = True
        self._wake.set()
        self._thread.join()

    def _watch(self) -> None:
        self._wake.wait()
        while True:
            # Clear before looking at _closed: a close() racing with us either is
            # seen here or leaves the Event set, so the wait below returns at once.
            self._wake.clear()
            if self._closed:
                return
            deadline = self._deadline
            assert deadline is not None
            left = deadline.hard_at - deadline.clock()
            if left <= 0:
                self._on_expire()
                return
            self._wake.wait(left)


def write_stderr(line: str) -> None:
    """Write one line to fd 2 without taking any Python-level lock."""
    try:
        os.write(2, (line.rstrip("\n") + "\n").encode(errors="replace"))
    except OSError:
        pass
