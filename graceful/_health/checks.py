"""Readiness checks: one run of every ``@readiness_check``, on the app's loop.

The health server's thread starts a run with ``call_soon_threadsafe`` and polls
``done``; everything else happens on the loop, driven by callbacks rather than a
coroutine of ours. On a busy loop every hop costs an iteration of the loop, that is
one slice of the app's own work: a ``gather`` over wrapper coroutines took about ten
hops (50-70 ms with the app working in 5 ms slices, benchmarks/bench_health.py),
callbacks take three (the start, the check's first step, its done callback).

Each check is bounded by its timeout: a check still running then is cancelled and
abandoned, not awaited, so one that swallows the cancellation cannot hold the run.
Results are short strings ("ok", "failed: ConnectionError", "timed out after 1 s");
the exception itself, with its traceback, goes to the log, once when a check starts
failing, and one INFO line when it passes again.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from typing import Any

from .readiness import Check

log = logging.getLogger("graceful")

failures: dict[str, int] = {}
"""Failed runs of each check since start (``graceful_readiness_check_failures_total``)."""

WAIT_MAX = 10.0
"""The most a request waits for a run, whatever the checks' own timeouts."""
SLACK = 0.5
"""How much longer than the slowest check's timeout a run may take on a busy loop."""


class CheckRun:
    """One run of ``checks``. ``done`` and ``results`` may be read from any thread;
    ``results`` is complete (and in the checks' order) once ``done`` is True. A run
    not done by ``late_at`` never ran in time: the loop is blocked or too busy."""

    def __init__(
        self,
        checks: list[Check],
        on_done: Callable[[], None],
        failing: set[str],
    ) -> None:
        self.checks = checks
        self.wait = min(WAIT_MAX, max(c.timeout for c in checks)) + SLACK
        self.late_at = time.monotonic() + self.wait
        self.results: dict[str, str] = {}
        self.done = False
        self._found: dict[str, str] = {}
        self._on_done = on_done
        self._failing = failing  # names failing at their last run; touched on the loop only

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start every check; call on the loop's thread."""
        for check in self.checks:
            try:
                task = asyncio.ensure_future(check.func(), loop=loop)
            except Exception as exc:  # the call itself raised, before any await
                self._record(check, f"failed: {type(exc).__name__}", exc)
                continue
            timer = loop.call_later(check.timeout, self._timed_out, check, task)
            task.add_done_callback(functools.partial(self._finished, check, timer))

    def _timed_out(self, check: Check, task: asyncio.Future[Any]) -> None:
        if check.name not in self._found:
            task.cancel()
            self._record(check, f"timed out after {check.timeout:g} s", None)

    def _finished(
        self, check: Check, timer: asyncio.TimerHandle, task: asyncio.Future[Any]
    ) -> None:
        timer.cancel()
        error = None if task.cancelled() else task.exception()  # (taken: never "unretrieved")
        if check.name in self._found:  # timed out already
            return
        if task.cancelled():
            result = "was cancelled"
        elif error is not None:
            result = f"failed: {type(error).__name__}"
        elif task.result() is False:
            result = "failed: returned False"
        else:
            result = "ok"
        self._record(check, result, error)

    def _record(self, check: Check, result: str, error: BaseException | None) -> None:
        self._found[check.name] = result
        if result != "ok":
            failures[check.name] = failures.get(check.name, 0) + 1
        if result != "ok" and check.name not in self._failing:
            self._failing.add(check.name)
            log.warning(
                "readiness check %r %s; /readyz answers 503 until it passes",
                check.name,
                result,
                exc_info=error,
            )
        elif result == "ok" and check.name in self._failing:
            self._failing.discard(check.name)
            log.info("readiness check %r passes again", check.name)
        if len(self._found) == len(self.checks):
            self.results = {c.name: self._found[c.name] for c in self.checks}
            self.done = True
            self._on_done()
