"""The event-loop lag watchdog: a heartbeat timer on the loop, watched from outside it.

A timer on the loop notes, each time it runs, when it is due next. How late that
next beat is right now (``lag()``) is arithmetic on one float that any thread can
read without a lock, so the health server's thread answers ``/livez`` with the
measured lag *while* the loop is still blocked.

A small daemon thread of its own writes the log: one WARNING per blocked episode,
when the lag passes ``max_lag``, with the stack of the loop thread (taken with
``sys._current_frames()``) and the coroutine it is stuck in; one INFO line when the
loop runs again. Logging gets its own thread, not the server's, because a log call
takes the handlers' locks: if the blocked loop thread holds one (its write to a full
stderr pipe), only this thread waits, and the probes are still answered.

Designs that fail: measuring on the loop itself (asyncio's debug-mode
``slow_callback_duration``, or a timer comparing its own lateness) reports only once
the loop is free again, which is too late for a liveness probe, never happens for a
loop wedged for good, and cannot say where the loop was stuck: that frame is gone.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import threading
import time
from types import FrameType

from .._core.stacks import stack_from_the_app

log = logging.getLogger("graceful")

MAX_INTERVAL = 1.0
"""The heartbeat's period at most: one timer callback a second on an idle loop. The lag
it reports is short of the truth by at most the period (the loop may have stopped
right after a beat), so with the default ``max_lag`` of 5 s a loop blocked for 5 s
shows as 4-5 s late, and ``/livez`` fails within 6 s of the block."""
# History: a period of 0.25 s, with the watcher waking at each beat, made an idle app
# with the health server wake 9 times a second (supervisord: once). A 1 s period had
# been tried before and undone, because probes of a loop busy in 5 ms slices then
# waited up to 1 s (p99): the watcher's four wake-ups a second had been part of what
# handed the GIL to the server's thread. Since the nudger lowers the switch interval
# while the server has work (see _gil), the server takes the GIL itself, and the
# busy-loop figures of bench_health stay where they were with the 1 s period.
INTERVAL_SHARE = 0.25
"""With a small ``max_lag`` the beat runs four times within it."""
WATCH_MARGIN = 0.005
"""The watcher wakes this long after the moment a beat could first be too late, so
that it finds it late rather than just in time (and does not wake twice)."""

# Code flags of frames that belong to a coroutine (inspect's CO_* constants).
_COROUTINE_FLAGS = 0x80 | 0x100 | 0x200  # CO_COROUTINE | CO_ITERABLE_COROUTINE | CO_ASYNC_GENERATOR


class LoopLag:
    """Heartbeat on one event loop; ``lag()`` may be called from any thread."""

    def __init__(self, max_lag: float, option: str = "liveness_max_lag") -> None:
        self.max_lag = max_lag
        self.option = option
        """How the user spelled the option, for the log line."""
        self.interval = min(MAX_INTERVAL, max_lag * INTERVAL_SHARE)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._due: float | None = None
        self._longest = 0.0
        self.max_seen = 0.0
        """The latest any beat has been since start (seconds)."""
        self._handle: asyncio.TimerHandle | None = None
        self._stop = threading.Event()

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the heartbeat; call on the loop's own thread, with the loop running."""
        self._loop = loop
        self._loop_thread = threading.get_ident()
        self._beat()
        start_daemon(threading.Thread(target=self._watch, name="graceful-loop-lag", daemon=True))

    def lag(self) -> float | None:
        """Seconds the loop is late right now; None before ``attach()`` and after ``close()``."""
        due = self._due
        return None if due is None else max(0.0, time.monotonic() - due)

    def close(self) -> None:
        """Stop the heartbeat and the watching thread (on the loop's thread, or once the
        loop is closed)."""
        self._due = None
        self._stop.set()
        handle, loop = self._handle, self._loop
        if handle is not None and loop is not None and not loop.is_closed():
            handle.cancel()

    def _beat(self) -> None:
        assert self._loop is not None
        now = time.monotonic()
        due = self._due
        if due is not None and now - due > self._longest:
            self._longest = now - due
        if due is not None and now - due > self.max_seen:
            self.max_seen = now - due
        if self._stop.is_set():
            return
        self._due = now + self.interval
        self._handle = self._loop.call_later(self.interval, self._beat)

    def _watch(self) -> None:
        # Asleep until the beat now due could be late by max_lag: an app whose loop
        # keeps beating wakes this thread about once per max_lag, not at every beat.
        # While the loop is blocked, it looks once per period for the beat that ends it.
        blocked_at: float | None = None  # the due time of the beat that came late
        wait = self.interval
        while not self._stop.wait(wait):
            due = self._due
            if due is None:
                wait = self.interval
                continue
            now = time.monotonic()
            late = now - due
            if blocked_at is None:
                if late > self.max_lag:
                    blocked_at = due
                    self._longest = 0.0
                    log.warning("%s", self._blocked_message(late))
                    wait = self.interval
                else:
                    wait = self.max_lag - late + WATCH_MARGIN
            elif due != blocked_at:  # a beat ran: the loop is free again
                log.info("event loop responsive again; it was blocked for %.1f s", self._longest)
                blocked_at = None
                wait = self.interval
            # else: still blocked; look again in a period

    def _blocked_message(self, late: float) -> str:
        frame = sys._current_frames().get(self._loop_thread)
        head = f"event loop blocked for {late:.2f} s (more than {self.option} {self.max_lag:g} s)"
        tail = "; /livez and /readyz answer 503 until it runs again."
        if frame is None:
            return head + tail
        stack = stack_from_the_app(frame)
        return f"{head} {where(frame)}{tail} Stack of the loop thread:\n{stack}"


def where(frame: FrameType) -> str:
    """``in coroutine NAME (FILE:LINE)``: the innermost coroutine of a stack, and the
    function it called if the stack ends in plain code."""
    inner = frame
    current: FrameType | None = frame
    while current is not None and not current.f_code.co_flags & _COROUTINE_FLAGS:
        current = current.f_back
    if current is None:
        return f"in {_name(inner)}"
    if current is inner:
        return f"in coroutine {_name(current)}"
    return f"in {_name(inner)}, called from coroutine {_name(current)}"


def _name(frame: FrameType) -> str:
    code = frame.f_code
    name = getattr(code, "co_qualname", code.co_name)  # co_qualname: Python 3.11+
    return f"{name} ({code.co_filename}:{frame.f_lineno})"


STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


def start_daemon(thread: threading.Thread) -> None:
    """Start ``thread`` with SIGTERM and SIGINT blocked in it, so the kernel delivers
    them to the main thread, whose blocking call they must interrupt."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        thread.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
