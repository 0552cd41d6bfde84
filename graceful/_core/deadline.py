"""The one deadline of a shutdown, and the watchdog thread that enforces it.

The deadline is created at the first stop trigger. Every bounded wait of the
shutdown sequence asks it for ``time_left()``. It ends a safety margin before the
grace window does, so the process is gone before the orchestrator's SIGKILL.

The watchdog is the backstop for what no cooperative code can bound: a coroutine
that blocks the loop thread, a hook or import stuck in C code, a non-daemon thread
that never returns. It is a daemon thread started before the app is imported, so
arming it from a signal handler only writes a byte to a pipe (starting a thread,
or setting an Event, inside a signal handler could deadlock on a lock the
interrupted code holds). When it fires it writes the stack of the main thread and
one line with ``os.write`` (the logging locks may be held by the stuck thread),
SIGKILLs the app's descendants and calls ``os._exit``. Under ``python -m graceful``
it stays armed while the interpreter exits, so a blocking ``atexit`` handler
cannot keep the process past the window either.
"""

from __future__ import annotations

import _thread
import os
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
    """Calls ``on_expire`` at ``deadline.hard_at`` unless closed before.

    Woken through a pipe rather than a ``threading.Event``: ``arm()`` runs inside a
    signal handler, which may interrupt the main thread while it holds the very
    lock an Event's ``set()`` needs (a nested handler would then deadlock);
    ``os.write`` takes no lock.
    """

    def __init__(self, on_expire: Callable[[], None]) -> None:
        self._on_expire = on_expire
        self._deadline: Deadline | None = None
        self._closed = False
        self._r, self._w = os.pipe()
        os.set_blocking(self._w, False)
        # A bare thread: threading.Thread.start() waits until the new thread runs, a
        # scheduling round trip paid on every start of every service. Nothing needs
        # it running before the first stop, and the pipe keeps an early poke.
        self._done = _thread.allocate_lock()
        self._done.acquire()
        _thread.start_new_thread(self._run, ())

    def arm(self, deadline: Deadline) -> None:
        """Start counting. Safe to call from a signal handler."""
        self._deadline = deadline
        self._poke()

    def close(self) -> None:
        """Stop watching; the process will not be ended by this watchdog."""
        self._closed = True
        self._poke()
        self._done.acquire()  # released when the thread has ended
        os.close(self._r)
        os.close(self._w)

    def _poke(self) -> None:
        try:
            os.write(self._w, b"!")
        except OSError:  # the pipe is full: the thread has a wake-up pending anyway
            pass

    def _run(self) -> None:
        try:
            self._watch()
        finally:
            self._done.release()

    def _watch(self) -> None:
        import select

        timeout: float | None = None
        while True:
            readable, _, _ = select.select([self._r], [], [], timeout)
            if readable:
                os.read(self._r, 512)
            if self._closed:
                return
            deadline = self._deadline
            if deadline is None:
                continue
            timeout = deadline.hard_at - deadline.clock()
            if timeout <= 0:
                self._on_expire()
                return


class Spare:
    """One file descriptor held back for the stop.

    An app out of descriptors (a connection leak, a flood on its port) must still get
    its sequence and its hooks: loading the stop path, reading ``/proc`` and a hook's
    own ``open()`` each need one. The spare is taken before the app is imported and
    freed when the stop begins (or by the watchdog, if the loop never gets there); the
    sequence's steps then use that slot one after the other.

    A freed slot goes to whichever thread opens a descriptor first. The health server,
    which retries ``accept()`` while the process is out of descriptors, took it in
    tests (the hook's ``open()`` then failed), so it asks under :attr:`lock` and takes
    nothing once the spare is freed, if it ever found the process out of descriptors.
    """

    def __init__(self) -> None:
        self.lock = _thread.allocate_lock()
        self.freed = False
        self._fd: int | None = None

    def keep(self) -> None:
        try:
            self._fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:  # out of descriptors already: nothing to hold back
            self._fd = None

    def free(self) -> None:
        with self.lock:
            self.freed = True
            fd, self._fd = self._fd, None
            if fd is not None:
                os.close(fd)
