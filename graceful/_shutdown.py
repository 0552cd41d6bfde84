"""The shutdown sequence: six phases, each a small coroutine bounded by the deadline.

Every phase logs one line with what it did and how long it took; the results are
gathered into the summary line and the exit code.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import signal
import sys
import threading
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any

from ._children import Descendants
from ._deadline import KILL_RESERVE, Deadline
from ._errors import EXIT_FAILURE
from ._hooks import HookResults, ShutdownContext, run_hooks, take_hooks, task_stack

if TYPE_CHECKING:
    from ._runtime import Run

log = logging.getLogger("graceful")

TASK_SHARE = 0.5
"""Phase 3 may use at most this share of the time left, so the hooks always get the rest."""


@dataclasses.dataclass
class Outcome:
    tasks_cancelled: int = 0
    tasks_stuck: list[str] = dataclasses.field(default_factory=list)
    main_error: bool = False
    hooks: HookResults = dataclasses.field(default_factory=HookResults)
    children_terminated: int = 0
    children_killed: int = 0
    threads_left: list[str] = dataclasses.field(default_factory=list)
    supervised: Any = None  # graceful._supervisor.Stopping, when the app supervises processes

    def failed(self) -> bool:
        h = self.hooks
        return bool(
            self.main_error
            or self.tasks_stuck
            or h.failed
            or h.timed_out
            or self.children_killed
            or self.threads_left
            or (self.supervised is not None and self.supervised.failed())
        )


async def shutdown(run: Run, main_task: asyncio.Task[Any] | None) -> int:
    deadline = run.deadline
    assert deadline is not None
    out = Outcome()
    # Supervised processes (graceful._supervisor, loaded only by apps that use it)
    # are stopped by their supervisor in dependency order, not by the blanket SIGTERM.
    supervisor = sys.modules.get("graceful._supervisor")
    children = Descendants(skip=supervisor.owned_by_supervisors() if supervisor else None)
    try:
        # 1. Mark shutting down (done by the trigger); let wait_for_shutdown() waiters run.
        with _phase(deadline, 1, "stop announced to wait_for_shutdown() waiters"):
            await asyncio.sleep(0)

        # 2. SIGTERM to every descendant now, so they use the window in parallel with us.
        with _phase(deadline, 2, "children sent SIGTERM") as note:
            if supervisor is not None:
                out.supervised = supervisor.stop_all(deadline)
            children.discover()
            out.children_terminated = len(children.send(signal.SIGTERM))
            note(str(out.children_terminated))

        # 3. Cancel main, let it unwind; then every other task. Bounded by a share of the time.
        with _phase(deadline, 3, "tasks cancelled") as note:
            await _cancel_tasks(deadline, main_task, out)
            note(f"{out.tasks_cancelled}, {len(out.tasks_stuck)} stuck")

        # 4. Hooks, last registered first, each bounded by min(its timeout, time left).
        hooks = take_hooks()
        with _phase(deadline, 4, "hooks run") as note:
            ctx = ShutdownContext(run.reason, run.signal, run.exit_code, deadline)
            out.hooks = await run_hooks(hooks, ctx, deadline)
            h = out.hooks
            note(
                f"{len(hooks)}: {len(h.ok)} ok, {len(h.failed)} failed, {len(h.timed_out)} timed out"
            )

        # 5. Wait for descendants until just before the deadline; SIGKILL what is left.
        #    Dying is observed through pidfds: nothing is reaped, no exit status stolen.
        with _phase(deadline, 5, "children stopped") as note:
            if out.supervised is not None:  # each is SIGKILLed by its own timer, by the deadline
                await out.supervised.wait(deadline)
            children.discover()
            alive = await children.wait_async(deadline.time_left() - KILL_RESERVE)
            if alive:
                out.children_killed = len(children.send(signal.SIGKILL, alive))
                log.error(
                    "%d child process(es) %s still running at the deadline; sent SIGKILL",
                    len(alive),
                    alive,
                )
                await children.wait_async(min(KILL_RESERVE, deadline.time_left()))
            note(f"{out.children_killed} killed")

        # 6. Executor down without waiting; other threads get what is left; flush logs.
        with _phase(deadline, 6, "threads stopped") as note:
            await _stop_threads(deadline, out, run.executor)
            note(f"{len(out.threads_left)} left running")
    finally:
        children.close()

    code = run.exit_code
    if out.failed() and code == 0:
        code = EXIT_FAILURE
    _summary(run, deadline, out, code)
    return code


class _phase:
    """Times one phase and logs one line for it."""

    def __init__(self, deadline: Deadline, number: int, what: str) -> None:
        self.deadline, self.number, self.what, self.detail = deadline, number, what, ""

    def __enter__(self) -> Any:
        self.start = self.deadline.clock()

        def note(detail: str) -> None:
            self.detail = detail

        return note

    def __exit__(self, *exc: object) -> None:
        took = (self.deadline.clock() - self.start) * 1000
        detail = f": {self.detail}" if self.detail else ""
        log.info("phase %d/6 %s%s (%.1f ms)", self.number, self.what, detail, took)


async def _cancel_tasks(
    deadline: Deadline, main_task: asyncio.Task[Any] | None, out: Outcome
) -> None:
    end = deadline.clock() + deadline.time_left() * TASK_SHARE
    me = asyncio.current_task()
    seen: set[asyncio.Task[Any]] = set()
    if main_task is not None and not main_task.done():
        main_task.cancel()
        out.tasks_cancelled += 1
        seen.add(main_task)
        await asyncio.wait({main_task}, timeout=max(0.0, end - deadline.clock()))
    # Tasks may start other tasks while they unwind: sweep until none is new.
    for _ in range(3):
        others = {t for t in asyncio.all_tasks() if t is not me and not t.done()} - seen
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
            log.error(
                "task %r did not finish after being cancelled; it was abandoned."
                " Let it handle CancelledError quickly.\n%s",
                task.get_name(),
                task_stack(task),
            )
        elif not task.cancelled() and task.exception() is not None:
            error = task.exception()
            if task is main_task:
                out.main_error = True
            log.error("task %r raised while stopping", task.get_name(), exc_info=error)


async def _stop_threads(deadline: Deadline, out: Outcome, ours: Executor) -> None:
    loop = asyncio.get_running_loop()
    # Ours, installed at start (uvloop keeps its own out of reach), and whatever
    # default executor the app may have set instead (asyncio exposes it).
    for each in {ours, getattr(loop, "_default_executor", None) or ours}:
        each.shutdown(wait=False, cancel_futures=True)
    gens = asyncio.ensure_future(loop.shutdown_asyncgens())
    await asyncio.wait({gens}, timeout=deadline.time_left())
    # Non-daemon threads would be joined by the interpreter at exit: give them what is left.
    for thread in blocking_threads():
        thread.join(deadline.time_left())
        if thread.is_alive():
            out.threads_left.append(thread.name)


def blocking_threads() -> list[threading.Thread]:
    """Threads the interpreter would join at exit: not daemons, not us, not the main thread."""
    exempt = (threading.main_thread(), threading.current_thread())
    return [t for t in threading.enumerate() if not t.daemon and t not in exempt]


def _summary(run: Run, deadline: Deadline, out: Outcome, code: int) -> None:
    h = out.hooks
    parts = [
        f"shutdown after {run.reason} took {deadline.elapsed() * 1000:.1f} ms",
        f"hooks ok {_names(h.ok)}, failed {_names(h.failed)}, timed out {_names(h.timed_out)}",
        f"tasks cancelled {out.tasks_cancelled}, stuck {_names(out.tasks_stuck)}",
        f"children terminated {out.children_terminated}, killed {out.children_killed}",
        f"exit code {code}",
    ]
    if out.supervised is not None:
        parts.insert(-1, f"processes {out.supervised.summary()}")
    (log.error if out.failed() else log.info)("; ".join(parts))


def _names(names: list[str]) -> str:
    return f"{len(names)} {names}" if names else "0"
