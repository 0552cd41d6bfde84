"""The ``@on_shutdown`` registry and the runner that calls hooks within the deadline.

Hooks run one after another, last registered first (like ``atexit``). Each one is
bounded by ``min(its timeout, time left)``. An async hook runs as a task that is
abandoned (cancelled, not awaited) at its bound, so a hook that swallows
cancellation cannot hold the sequence. A sync hook runs in a daemon thread of its
own, not in the loop's executor: a thread cannot be stopped, so at its bound it is
abandoned, and being a daemon it does not keep the process alive afterwards.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import io
import logging
import signal
import sys
import threading
import traceback
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

from ._deadline import Deadline
from ._errors import UsageError

log = logging.getLogger("graceful")

F = TypeVar("F", bound=Callable[..., Any])


@dataclasses.dataclass(frozen=True)
class ShutdownContext:
    """What a shutdown hook may want to know about the shutdown in progress."""

    reason: str
    """What started the shutdown: ``"SIGTERM"``, ``"main returned"``, or the
    reason given to ``request_shutdown()``."""
    signal: signal.Signals | None
    """The signal that started the shutdown, or None."""
    exit_code: int
    """The exit code the process will have if nothing fails from here on."""
    _deadline: Deadline = dataclasses.field(repr=False)

    @property
    def deadline(self) -> float:
        """When the shutdown sequence must be over, on the ``time.monotonic()`` clock."""
        return self._deadline.at

    def time_left(self) -> float:
        """Seconds until the deadline (never negative)."""
        return self._deadline.time_left()


@dataclasses.dataclass(frozen=True)
class Hook:
    func: Callable[..., Any]
    name: str
    timeout: float | None
    takes_context: bool


@dataclasses.dataclass
class HookResults:
    ok: list[str] = dataclasses.field(default_factory=list)
    failed: list[str] = dataclasses.field(default_factory=list)
    timed_out: list[str] = dataclasses.field(default_factory=list)


_registry: list[Hook] = []
_registry_lock = threading.Lock()


@overload
def on_shutdown(func: F, /) -> F: ...
@overload
def on_shutdown(*, timeout: float | None = None) -> Callable[[F], F]: ...
def on_shutdown(func: Any = None, /, *, timeout: float | None = None) -> Any:
    """Register ``func`` to run during the shutdown sequence.

    Use as ``@on_shutdown`` or ``@on_shutdown(timeout=3.0)``. The hook may be async
    or sync and may take one positional argument, a :class:`ShutdownContext`.
    Hooks run once, last registered first, after the app's tasks were cancelled.

    **Deadline:** the hook gets ``min(timeout, time left)`` seconds; after that it
    is abandoned (an async hook is cancelled, a sync hook's thread is left to
    die with the process), logged with its stack, and the next hook runs.
    """
    if timeout is not None and not (isinstance(timeout, (int, float)) and timeout > 0):
        raise UsageError(f"on_shutdown(timeout=...) must be seconds > 0, got {timeout!r}")

    def register(f: F) -> F:
        if not callable(f):
            raise UsageError(f"on_shutdown() needs a function, got {f!r}")
        hook = Hook(f, _name(f), None if timeout is None else float(timeout), _takes_arg(f))
        with _registry_lock:
            _registry.append(hook)
        return f

    return register if func is None else register(func)


def take_hooks() -> list[Hook]:
    """Remove and return the registered hooks in the order they must run."""
    with _registry_lock:
        hooks = list(reversed(_registry))
        _registry.clear()
    return hooks


def _name(func: Callable[..., Any]) -> str:
    return str(getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or func)


def _takes_arg(func: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return any(
        p.kind == inspect.Parameter.VAR_POSITIONAL
        or (p.kind in positional and p.default is inspect.Parameter.empty)
        for p in params
    )


async def run_hooks(hooks: list[Hook], ctx: ShutdownContext, deadline: Deadline) -> HookResults:
    """Run ``hooks`` in order, each bounded; never raises."""
    results = HookResults()
    for hook in hooks:
        bound = deadline.time_left()
        if hook.timeout is not None:
            bound = min(bound, hook.timeout)
        started = deadline.clock()
        try:
            outcome, stack = await _run_one(hook, ctx, bound)
        except Exception:  # a bug of ours must not stop the other hooks
            log.exception("hook %r could not be run", hook.name)
            results.failed.append(hook.name)
            continue
        took = deadline.clock() - started
        if outcome is None:
            results.ok.append(hook.name)
            log.debug("hook %r done in %.1f ms", hook.name, took * 1000)
        elif outcome is _TIMED_OUT:
            results.timed_out.append(hook.name)
            if hook.timeout is not None and bound == hook.timeout:
                why = f"its timeout of {bound:.2f} s"
                fix = "Make it faster or raise its timeout."
            else:
                why = f"the shutdown deadline ({bound:.2f} s left)"
                fix = "Give it a timeout or make it faster."
            log.error(
                "hook %r still running after %s; it was abandoned. %s\n%s",
                hook.name,
                why,
                fix,
                stack,
            )
        else:
            results.failed.append(hook.name)
            log.error(
                "hook %r raised %s",
                hook.name,
                type(outcome).__name__,
                exc_info=(type(outcome), outcome, outcome.__traceback__),
            )
    return results


_TIMED_OUT = object()


async def _run_one(hook: Hook, ctx: ShutdownContext, bound: float) -> tuple[Any, str]:
    """Returns (None | exception | _TIMED_OUT, stack of the abandoned hook)."""
    args = (ctx,) if hook.takes_context else ()
    if inspect.iscoroutinefunction(hook.func):
        return await _run_awaitable(hook.func(*args), hook.name, bound)
    loop = asyncio.get_running_loop()
    done: asyncio.Future[Any] = loop.create_future()

    def call() -> None:
        try:
            value: Any = hook.func(*args)
            outcome: tuple[Any, BaseException | None] = (value, None)
        except BaseException as exc:  # reported on the loop, like any hook failure
            outcome = (None, exc)
        try:
            loop.call_soon_threadsafe(_resolve, done, outcome)
        except RuntimeError:  # the loop is closed: the hook was abandoned long ago
            pass

    thread = threading.Thread(target=call, name=f"graceful-hook:{hook.name}", daemon=True)
    thread.start()
    finished, _ = await asyncio.wait({done}, timeout=bound)
    if not finished:
        done.cancel()
        return _TIMED_OUT, _thread_stack(thread)
    value, error = done.result()
    if error is not None:
        return error, ""
    if inspect.isawaitable(value):  # e.g. a sync function that returns a coroutine
        return await _run_awaitable(value, hook.name, bound)
    return None, ""


def _resolve(fut: asyncio.Future[Any], outcome: tuple[Any, BaseException | None]) -> None:
    if not fut.done():
        fut.set_result(outcome)


async def _run_awaitable(aw: Awaitable[Any], name: str, bound: float) -> tuple[Any, str]:
    task = asyncio.ensure_future(aw)
    finished, _ = await asyncio.wait({task}, timeout=bound)
    if not finished:
        stack = task_stack(task)
        task.cancel()  # abandoned: not awaited, it may swallow the cancellation
        return _TIMED_OUT, stack
    if task.cancelled():
        return asyncio.CancelledError(f"hook {name!r} was cancelled"), ""
    return task.exception(), ""


def task_stack(task: asyncio.Future[Any]) -> str:
    if not isinstance(task, asyncio.Task):
        return ""
    buf = io.StringIO()
    task.print_stack(file=buf)
    return buf.getvalue().rstrip()


def _thread_stack(thread: threading.Thread) -> str:
    frame = sys._current_frames().get(thread.ident or -1)
    if frame is None:
        return "  (no stack)"
    return "".join(traceback.format_stack(frame)).rstrip()
