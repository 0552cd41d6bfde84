"""Test a graceful app's stop in your own test suite, in-process.

.. code-block:: python

    import graceful.testing
    import myapp

    async def test_state_is_saved_on_sigterm():          # pytest-asyncio
        async with graceful.testing.running(myapp.main, grace=2) as app:
            await app.started()
            ...                                           # talk to the app
            outcome = await app.stop()                    # as SIGTERM would
        assert outcome.exit_code == 0
        assert outcome.hooks_ok == ["save_state"]

    def test_stops_cleanly():                              # plain pytest
        outcome = graceful.testing.run(myapp.main, grace=2)
        assert outcome.exit_code == 0

The app runs on the test's own event loop through the whole sequence (drain,
cancellation, hooks, children), with three differences from a real process: no
signal handler is installed (``stop()`` takes the place of the signal), only the
tasks the app started are cancelled and only child processes it started are
stopped (the test's own are left alone), and the deadline never ends the test
process (``outcome.deadline_missed`` says it was reached). Afterwards nothing is
left installed (no handler, no task factory, no graceful thread), and the hooks
registered before the run (at import) are registered again for the next test.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from ._config import Config
from ._core import hooks as _hooks
from ._core import runtime as _runtime
from ._errors import UsageError
from ._health.readiness import state as readiness
from ._pid1.children import descendant_pids

__all__ = ("Outcome", "RunningApp", "running", "run")


class Outcome:
    """What a stop did: the exit code the process would have had, and why."""

    def __init__(self, run: _runtime.Run, code: int, took: float) -> None:
        out = run.report
        self.exit_code = code
        """The exit code ``python -m graceful`` would have exited with."""
        self.reason = run.reason
        """What started the shutdown (``"SIGTERM"``, ``"main returned"``, ...)."""
        self.took = took
        """Seconds from the stop (or main's end) to the end of the sequence."""
        self.hooks_ok: list[str] = list(out.hooks.ok) if out else []
        self.hooks_failed: list[str] = list(out.hooks.failed) if out else []
        self.hooks_timed_out: list[str] = list(out.hooks.timed_out) if out else []
        self.hooks_skipped: list[str] = list(out.hooks.skipped) if out else []
        self.tasks_cancelled: int = out.tasks_cancelled if out else 0
        self.tasks_stuck: list[str] = list(out.tasks_stuck) if out else []
        self.drain_cut: list[str] = list(out.drain_cut) if out else []
        self.children_terminated: int = out.children_terminated if out else 0
        self.children_killed: int = out.children_killed if out else 0
        self.notes: dict[str, int] = dict(run.notes)
        """Figures from integrations, e.g. ``{"requests cut": 2}``."""
        self.deadline_missed = run.deadline_missed

    def __repr__(self) -> str:
        return (
            f"Outcome(exit_code={self.exit_code}, reason={self.reason!r},"
            f" hooks_ok={self.hooks_ok}, hooks_failed={self.hooks_failed},"
            f" hooks_timed_out={self.hooks_timed_out}, tasks_cancelled={self.tasks_cancelled},"
            f" drain_cut={self.drain_cut}, took={self.took:.3f})"
        )


class RunningApp:
    """An app started by :func:`running`."""

    def __init__(self, run: _runtime.Run, task: asyncio.Task[int]) -> None:
        self._run = run
        self._task = task

    async def started(self, timeout: float = 10.0) -> None:
        """Wait until ``main`` runs. Raises if the app ended (or timed out) first."""
        waiter = asyncio.ensure_future(self._run.main_called.wait())
        try:
            done, _ = await asyncio.wait(
                {waiter, self._task}, timeout=timeout, return_when="FIRST_COMPLETED"
            )
        finally:
            waiter.cancel()
        if waiter not in done:
            if self._task.done():
                raise AssertionError(f"the app ended before main ran: {self._task.result()}")
            raise AssertionError(f"main did not start within {timeout} s")

    @property
    def stopping(self) -> bool:
        return self._run.deadline is not None

    async def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 60.0) -> Outcome:
        """Stop the app as ``sig`` would and return the outcome once the sequence ended."""
        self._run.handle_signal(int(sig), None)
        return await self.wait(timeout)

    async def wait(self, timeout: float = 60.0) -> Outcome:
        """Wait until the app ends (by itself, or after :meth:`stop`)."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        code = await asyncio.wait_for(asyncio.shield(self._task), timeout)
        return Outcome(self._run, code, loop.time() - start)


@contextlib.asynccontextmanager
async def running(
    main: _runtime.Main,
    *,
    grace: float = 5.0,
    drain_delay: float = 0.0,
    task_errors: str = "log",
    readiness_mode: str = "auto",
) -> AsyncIterator[RunningApp]:
    """Start ``main`` on the running loop; on leaving the block, stop it as SIGTERM
    would (if :meth:`RunningApp.stop` was not called) and clean everything up.

    **Cancellation:** cancelling the test cancels the app's tasks with it.
    """
    if _runtime.current() is not None:
        raise UsageError("graceful.testing runs one app at a time; leave the first one first")
    config = Config(
        grace=grace,
        drain_delay=drain_delay,
        task_errors=task_errors,
        readiness=readiness_mode,
        handle_signals=False,
    )
    hooks = _hooks.snapshot()  # module-level hooks are registered once, at import
    run = _runtime.open_run(config, embedded=True)
    run.excluded_pids = set(descendant_pids())  # the test's own children are not the app's
    task = asyncio.ensure_future(run.main(main))
    app = RunningApp(run, task)
    try:
        yield app
        if not task.done():
            await app.stop()
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        _runtime.close_run(run)
        _hooks.restore(hooks)  # ready for the next test, as at import
        readiness.begin("auto")
        readiness.stopping = False


def run(
    main: _runtime.Main,
    *,
    stop_when: Callable[[], Awaitable[Any]] | None = None,
    grace: float = 5.0,
    drain_delay: float = 0.0,
    task_errors: str = "log",
    readiness_mode: str = "auto",
) -> Outcome:
    """For a synchronous test: run ``main`` on a fresh event loop, stop it as SIGTERM
    would once ``stop_when()`` returns (by default as soon as ``main`` runs), and
    return the outcome. If ``main`` ends by itself first, that end is the outcome.
    """

    async def scenario() -> Outcome:
        async with running(
            main,
            grace=grace,
            drain_delay=drain_delay,
            task_errors=task_errors,
            readiness_mode=readiness_mode,
        ) as app:
            await app.started()
            if stop_when is not None:
                waiting = asyncio.ensure_future(stop_when())
                await asyncio.wait({waiting, app._task}, return_when="FIRST_COMPLETED")
                waiting.cancel()
            if app._task.done():
                return await app.wait()
            return await app.stop()

    return asyncio.run(scenario())
