"""The shutdown sequence: six phases, each a small coroutine bounded by the deadline.

Every phase logs one line with what it did and how long it took; the results are
gathered into the summary line and the exit code.

The budget (``budget``): the drain (phase 3, first part) may run until only what
the hooks declared and the cancellation's reserve are left; every unused second
flows to the next step. With a 10 s grace, no drain delay and one hook declaring
``timeout=2``: drain up to 7.0 s, then cancellation up to 0.5 s, hooks at least 2 s.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any

from .._errors import EXIT_FAILURE, exit_code_of
from .._pid1.children import Descendants
from . import budget as _budget
from .deadline import KILL_RESERVE, Deadline
from .hooks import HookResults, run_hooks, snapshot, take_hooks
from .parts import Stopping, registered
from .runtime import CUT_SUFFIX, keep_logger_enabled
from .stacks import task_stack

if TYPE_CHECKING:
    from .runtime import Run

log = logging.getLogger("graceful")


PHASES = (
    "stop announced",
    "children sent SIGTERM",
    "tasks drained and cancelled",
    "hooks run",
    "children stopped",
    "threads stopped",
)
"""The names of the six phases, as each phase's line (``phase 2/6 children sent
SIGTERM: ...``) and the notify protocol's STATUS= give them."""


class StopReport:
    """What the sequence did; the summary line and the exit code are made from it."""

    def __init__(self) -> None:
        self.drain_waited: list[str] = []
        self.drain_cut: list[str] = []
        self.drain_took = 0.0
        self.split = _budget.split(0.0, ())
        self.tasks_cancelled = 0
        self.undrained: set[asyncio.Task[Any]] = set()
        """Tasks running beside a main that does not listen, when it was cancelled."""
        self.not_drained = 0
        """How many of them ended cancelled: work given no drain (not a failure)."""
        self.tasks_stuck: list[str] = []
        self.main_error = False
        self.hooks = HookResults()
        self.children_terminated = 0
        self.children_killed = 0
        self.threads_left: list[str] = []
        self.phases_failed: list[int] = []
        self.noted_failures: list[str] = []  # e.g. "requests cut", from an integration
        self.tell: Callable[[str], None] | None = None
        """Where each phase is announced (the notify protocol's STATUS=), if anywhere."""
        self.stopping: list[Stopping] = []
        """What the parts that own processes (supervisors) are stopping."""

    def failed(self) -> bool:
        h = self.hooks
        return bool(
            self.main_error
            or self.drain_cut
            or self.tasks_stuck
            or h.failed
            or h.timed_out
            or self.children_killed
            or self.threads_left
            or self.noted_failures
            or self.phases_failed
            or any(s.failed() for s in self.stopping)
        )


async def shutdown(run: Run) -> int:
    deadline = run.deadline
    assert deadline is not None
    keep_logger_enabled()
    out = StopReport()
    if run.notifier is not None:
        out.tell = run.notifier.status
    # Supervised processes are stopped by their supervisor (a part registered with
    # _core.parts when the app loaded it) in dependency order, not by the blanket SIGTERM.
    parts = registered()
    owned = [part.owns() for part in parts]
    children = Descendants(
        exclude=run.excluded_pids,
        skip=(lambda pid: any(test(pid) for test in owned)) if owned else None,
    )
    try:
        # 1. Announce: wait_for_shutdown() returns, libraries that took the signal
        #    handlers are told to stop, and the drain budget is set.
        with _phase(deadline, out, 1) as note:
            hooks = [h for h in snapshot() if h.always or run.main_started]
            out.split = split = _budget.split(deadline.time_left(), (h.timeout for h in hooks))
            run.drain_end = deadline.clock() + split.drain
            run.sequence_started.set()
            run.guard.call_foreign()
            await asyncio.sleep(0)
            note(
                f"drain budget {split.drain:.2f} s, then cancellation {split.cancel:.2f} s,"
                f" hooks {split.hooks:.2f} s ({len(hooks)})"
            )

        # 2. SIGTERM to every descendant now, so they use the window in parallel with us.
        with _phase(deadline, out, 2) as note:
            out.stopping = [s for s in (part.stop(deadline) for part in parts) if s is not None]
            children.discover()
            supervised = sum(s.signalled() for s in out.stopping)
            out.children_terminated = len(children.send(signal.SIGTERM)) + supervised
            note(f"{out.children_terminated}{_supervised(supervised, ', with their stop signal')}")

        # 3. Drain: what listens for the stop finishes on its own within the drain
        #    budget; then everything still running is cancelled, within its share.
        with _phase(deadline, out, 3) as note:
            await _drain(run, deadline, out)
            await _cancel_tasks(run, deadline, out, out.split.hooks)
            _main_result(run, out)
            note(
                f"drained {len(out.drain_waited)} in {out.drain_took:.2f} s,"
                f" cut {_cut(run, out)}; {out.tasks_cancelled} cancelled,"
                f" {len(out.tasks_stuck)} stuck"
            )

        # 4. Hooks, last registered first, each bounded (own timeout, time left, fair share);
        #    only for an app whose main started, unless registered with always=True.
        hooks = take_hooks()
        with _phase(deadline, out, 4) as note:
            out.hooks = await run_hooks(hooks, run.context(), deadline)
            h = out.hooks
            skipped = f", {len(h.skipped)} skipped" if h.skipped else ""
            note(
                f"{len(hooks)}: {len(h.ok)} ok, {len(h.failed)} failed,"
                f" {len(h.timed_out)} timed out{skipped}"
            )

        # 5. Wait for descendants until just before the deadline; SIGKILL what is left.
        #    Dying is observed through pidfds: nothing is reaped, no exit status stolen.
        with _phase(deadline, out, 5) as note:
            for stopping in out.stopping:  # each is SIGKILLed by its own timer, by the deadline
                await stopping.wait(deadline)
            children.discover()
            alive = await children.wait_async(deadline.time_left() - KILL_RESERVE)
            if alive:
                out.children_killed = len(children.send(signal.SIGKILL, alive))
                log.error(
                    "%d child process(es) %s still running at the deadline; sent SIGKILL"
                    " %.2f s before it, to see them die within it",
                    len(alive),
                    alive,
                    deadline.time_left(),
                )
                await children.wait_async(min(KILL_RESERVE, deadline.time_left()))
            supervised = sum(s.killed() for s in out.stopping)
            out.children_killed += supervised
            note(f"{out.children_killed} killed{_supervised(supervised, '')}")

        # 6. Executor down without waiting; other threads get what is left; flush logs.
        with _phase(deadline, out, 6) as note:
            await _stop_threads(run, deadline, out)
            if run.health is not None:  # up until now: 503 on /readyz, not connection refused
                run.health.close(min(0.1, deadline.time_left()))
            abandoned = [t.name for t in out.hooks.abandoned_threads if t.is_alive()]
            note(
                f"{len(out.threads_left)} left running"
                + (f", {len(abandoned)} abandoned hook thread(s) {abandoned}" if abandoned else "")
            )
    finally:
        children.close()

    out.noted_failures = [w for w in run.failures if run.notes.get(w)]
    code = run.exit_code
    if out.failed() and code == 0:
        code = EXIT_FAILURE
    run.report = out
    _summary(run, deadline, out, code)
    return code


class _phase:
    """Times one phase and logs one line for it.

    Every phase is best effort: one that raises (out of file descriptors, the
    process table unreadable) is logged with its traceback and counted as a failure,
    and the next phases still run, the hooks above all.
    """

    def __init__(self, deadline: Deadline, out: StopReport, number: int) -> None:
        self.deadline, self.out, self.number, self.what, self.detail = (
            deadline,
            out,
            number,
            PHASES[number - 1],
            "",
        )

    def __enter__(self) -> Any:
        self.start = self.deadline.clock()
        if self.out.tell is not None:  # the service manager's STATUS= (systemd)
            self.out.tell(f"stopping: phase {self.number}/6 {self.what}")

        def note(detail: str) -> None:
            self.detail = detail

        return note

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: object
    ) -> bool:
        took = (self.deadline.clock() - self.start) * 1000
        if isinstance(error, Exception):
            self.out.phases_failed.append(self.number)
            log.error(
                "phase %d/6 %s failed after %.1f ms (%s); going on with the next phase",
                self.number,
                self.what,
                took,
                error,
                exc_info=error,
            )
            return True
        detail = f": {self.detail}" if self.detail else ""
        log.info("phase %d/6 %s%s (%.1f ms)", self.number, self.what, detail, took)
        return False


async def _drain(run: Run, deadline: Deadline, out: StopReport) -> None:
    started = deadline.clock()
    if run.drain_end is None:  # phase 1 failed before it set the budget: no drain
        run.drain_end = started
    main = run.main_task
    waited: set[asyncio.Future[Any]] = set()
    if main is not None and not main.done():
        if not run.main_listens:
            # main does not wait for the stop: cancelling it is the only way to end it.
            # It may unwind (finally, async with) within the drain budget. What runs
            # beside it was given no drain: counted as not drained once it is cancelled.
            out.undrained = _running_tasks(run) - {main}
            main.cancel()
            out.tasks_cancelled += 1
        waited.add(main)
    # Work that starts listening or is protected during the drain (a connection handler
    # that protects the batch it writes) is drained too: look again whenever some ends
    # or is added, until none is left or the budget is over.
    while True:
        pending = {t for t in waited if not t.done()}
        pending |= {t for t in run.listeners if not t.done()}
        pending |= {t for t in run.protected if not t.done()}
        waited |= pending
        left = run.drain_end - deadline.clock()
        if not pending or left <= 0:
            break
        run.drain_waker = waker = asyncio.get_running_loop().create_future()
        await asyncio.wait({*pending, waker}, timeout=left, return_when=asyncio.FIRST_COMPLETED)
        run.drain_waker = None
    out.drain_took = deadline.clock() - started
    out.drain_waited = [_name(t) for t in waited if t is not main or run.main_listens]
    cut = [t for t in waited if not t.done() and (t is not main or run.main_listens)]
    if cut:
        out.drain_cut = [_name(t) for t in cut]
        log.error(
            "drain budget of %.2f s over with %s still running; cancelling them."
            " Raise --grace, or make them finish sooner",
            out.drain_took,
            out.drain_cut,
        )


def _running_tasks(run: Run) -> set[asyncio.Task[Any]]:
    """The app's tasks still running, not the sequence's own."""
    recorded = run.tasks.tasks
    candidates = recorded if run.embedded and recorded is not None else asyncio.all_tasks()
    me = asyncio.current_task()
    return {t for t in candidates if t is not me and not t.done()}


async def _cancel_tasks(run: Run, deadline: Deadline, out: StopReport, hooks: float) -> None:
    end = deadline.clock() + _budget.cancel_time(deadline.time_left(), hooks)
    main = run.main_task
    seen: set[asyncio.Task[Any]] = set()
    if main is not None:
        seen.add(main)
        if not main.done():
            if run.main_listens:
                out.tasks_cancelled += 1
            main.cancel()
            await asyncio.wait({main}, timeout=max(0.0, end - deadline.clock()))
    # Tasks may start other tasks while they unwind: sweep until none is new.
    for _ in range(3):
        others = _running_tasks(run) - seen
        if not others:
            break
        for task in others:
            task.cancel()
        out.tasks_cancelled += len(others)
        seen |= others
        await asyncio.wait(others, timeout=max(0.0, end - deadline.clock()))
    for task in seen:
        if not task.done():
            out.tasks_stuck.append(task.get_name())
            # Keep it quiet at loop close: it is reported here, once.
            task._log_destroy_pending = False  # type: ignore[attr-defined]
            log.error(
                "task %r did not finish after being cancelled; it was abandoned."
                " Let it handle CancelledError quickly.\n%s",
                task.get_name(),
                task_stack(task),
            )
        elif task is not main and not task.cancelled() and task.exception() is not None:
            log.error("task %r raised while stopping", task.get_name(), exc_info=task.exception())
    if out.undrained:
        # TaskGroup children end with main; connection handlers and the like in the sweep.
        lost = {t for t in out.undrained if t in seen or (t.done() and t.cancelled())}
        out.tasks_cancelled += len(lost - seen)
        out.not_drained = len(lost)
        if lost:
            log.warning(
                "main does not listen for the stop, so %d task(s) running beside it were"
                " cancelled at once, with no drain: work they had in flight is lost. To let"
                " it finish, await graceful.wait_for_shutdown() in main and end the work"
                " after it, or run the work under graceful.protect()",
                len(lost),
            )


def _main_result(run: Run, out: StopReport) -> None:
    """A main that ended during the sequence: its error or exit code counts."""
    main = run.main_task
    if main is None or not main.done() or main.cancelled():
        return
    if run.main_accounted:
        return  # main ended before the stop: its end started the shutdown
    error = main.exception()
    if error is not None:
        out.main_error = True
        log.error("main raised %s while stopping", type(error).__name__, exc_info=error)
        return
    code = exit_code_of(main.result())
    if code and not run.exit_code:
        run.exit_code = code


async def _stop_threads(run: Run, deadline: Deadline, out: StopReport) -> None:
    if run.embedded:
        return  # the host's loop and threads are not ours to stop
    loop = asyncio.get_running_loop()
    # Ours (installed at start under uvloop, which keeps its own out of reach), and
    # asyncio's default executor if the app made one (asyncio exposes it).
    executors: set[Executor] = {
        e for e in (run.executor, getattr(loop, "_default_executor", None)) if e
    }
    for each in executors:
        each.shutdown(wait=False, cancel_futures=True)
    gens = asyncio.ensure_future(loop.shutdown_asyncgens())
    await asyncio.wait({gens}, timeout=deadline.time_left())
    # asyncio's threaded child watcher (3.10/3.11) reaps each asyncio child in a
    # "waitpid-N" thread that reports to the loop; one that wakes after the loop has
    # closed logs "Loop ... that handles pid N is closed" after our summary. The
    # children are dead by now (phase 5), so these threads end at once: let them.
    for thread in threading.enumerate():
        if thread.name.startswith("waitpid-"):
            thread.join(min(KILL_RESERVE, deadline.time_left()))
    await asyncio.sleep(0)  # and let their reports land while the loop still runs
    # Non-daemon threads would be joined by the interpreter at exit: give them what is left.
    for thread in blocking_threads():
        thread.join(deadline.time_left())
        if thread.is_alive():
            out.threads_left.append(thread.name)


def blocking_threads() -> list[threading.Thread]:
    """Threads the interpreter would join at exit: not daemons, not us, not the main thread."""
    exempt = (threading.main_thread(), threading.current_thread())
    return [t for t in threading.enumerate() if not t.daemon and t not in exempt]


def _supervised(count: int, what: str) -> str:
    return f" ({count} supervised{what})" if count else ""


def _name(task: asyncio.Future[Any]) -> str:
    return task.get_name() if isinstance(task, asyncio.Task) else repr(task)


def _summary(run: Run, deadline: Deadline, out: StopReport, code: int) -> None:
    h = out.hooks
    parts = [
        f"shutdown after {run.reason} took {deadline.elapsed() * 1000:.1f} ms",
        _drain_part(run, out),
        f"hooks ok {_names(h.ok)}, failed {_names(h.failed)}, timed out {_names(h.timed_out)}"
        + (f", skipped {_names(h.skipped)}" if h.skipped else ""),
        f"tasks cancelled {out.tasks_cancelled}, stuck {_names(out.tasks_stuck)}",
        f"children terminated {out.children_terminated}, killed {out.children_killed}",
    ]
    summaries = [s.summary() for s in out.stopping]
    if any(summaries):
        parts.append(f"processes {' '.join(s for s in summaries if s)}")
    parts.extend(f"{what} {n}" for what, n in run.notes.items() if not what.endswith(CUT_SUFFIX))
    parts.append(f"exit code {code}")
    # The level follows the exit code: ERROR for any code but 0 (main raised, the app
    # failed to start, a chosen code), WARNING for a clean stop that drained nothing.
    level = log.error if code or out.failed() else log.warning if out.not_drained else log.info
    h = out.hooks
    fields = {  # the same figures, for a log pipeline (--log-format json)
        "cause": run.reason,
        "exit_code": code,
        "took_s": round(deadline.elapsed(), 4),
        "drain_s": round(out.drain_took, 4),
        "requests_cut": run.cut_count(),
        "hooks_ok": list(h.ok),
        "hooks_failed": list(h.failed),
        "hooks_timed_out": list(h.timed_out),
        "tasks_cancelled": out.tasks_cancelled,
        "tasks_stuck": list(out.tasks_stuck),
        "children_terminated": out.children_terminated,
        "children_killed": out.children_killed,
        "processes": {k: v for s in out.stopping for k, v in s.outcomes().items()},
    }
    level("; ".join(parts), extra={"fields": fields})


def _cut(run: Run, out: StopReport) -> str:
    """``2 (background work 1, requests 1)``: one figure for all the work cut at the end
    of the drain budget, whoever cut it (the sequence, or a server's integration)."""
    kinds = [f"tasks {out.drain_cut}"] if out.drain_cut else []
    count = len(out.drain_cut)
    for what, n in sorted(run.notes.items()):
        if what.endswith(CUT_SUFFIX) and n:
            kinds.append(f"{what[: -len(CUT_SUFFIX)]} {n}")
            count += n
    return f"{count}" + (f" ({', '.join(kinds)})" if kinds else "")


def _drain_part(run: Run, out: StopReport) -> str:
    text = f"drain {out.drain_took:.2f} s, cut {_cut(run, out)}"
    if out.not_drained:
        text += f", not drained {out.not_drained}"
    return text


def _names(names: list[str]) -> str:
    return f"{len(names)} {names}" if names else "0"
