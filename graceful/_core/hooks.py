"""The ``@on_shutdown`` registry and the runner that calls hooks within the deadline.

Hooks run one after another, last registered first (like ``atexit``). Each one is
bounded by the smallest of its own timeout, the time left, and a fair share that
keeps a slice of the window for every hook after it, so one hung hook without a
timeout cannot leave the others nothing. An async hook runs as a task that is
abandoned (cancelled, not awaited) at its bound, so a hook that swallows
cancellation cannot hold the sequence. A sync hook runs in a daemon thread of its
own, not in the loop's executor: a thread cannot be stopped, so at its bound it is
abandoned, and being a daemon it does not keep the process alive afterwards.

Hooks run only for an app whose ``main`` started: a stop during the import, or
between the import and ``main``'s first line, skips them (a state-saving hook of an
app that never loaded its state would overwrite good state with an empty one).
``@on_shutdown(always=True)`` opts a hook in for that case; ``ShutdownContext``
tells a hook whether ``main`` ran.

No dataclasses here: importing ``dataclasses`` costs milliseconds on every start.
"""

from __future__ import annotations

import _thread
import asyncio
import inspect
import logging
import signal
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

from .._errors import UsageError
from .._validate import flag, seconds
from .deadline import Deadline

log = logging.getLogger("graceful")

F = TypeVar("F", bound=Callable[..., Any])

FAIR_SHARE = 0.5
"""Of the time left, at most this share is kept back for the hooks still to run
(each of them gets an equal slice of it, or its own timeout if smaller)."""


class ShutdownContext:
    """What a shutdown hook (or code woken by ``wait_for_shutdown()``) may want to
    know about the shutdown in progress."""

    __slots__ = ("reason", "signal", "exit_code", "main_started", "_deadline", "_drain_end")

    def __init__(
        self,
        reason: str,
        signal: signal.Signals | None,
        exit_code: int,
        deadline: Deadline,
        main_started: bool = True,
        drain_end: float | None = None,
    ) -> None:
        self.reason = reason
        """What started the shutdown: ``"SIGTERM"``, ``"main returned"``, or the
        reason given to ``request_shutdown()``."""
        self.signal = signal
        """The signal that started the shutdown, or None."""
        self.exit_code = exit_code
        """The exit code the process will have if nothing fails from here on."""
        self.main_started = main_started
        """False when the stop came before ``main`` ran its first line (only hooks
        registered with ``always=True`` run then)."""
        self._deadline = deadline
        self._drain_end = drain_end

    def __repr__(self) -> str:
        return (
            f"ShutdownContext(reason={self.reason!r}, signal={self.signal!r},"
            f" exit_code={self.exit_code!r}, main_started={self.main_started!r})"
        )

    @property
    def deadline(self) -> float:
        """When the shutdown sequence must be over, on the ``time.monotonic()`` clock:
        the grace window minus graceful's safety margin (a quarter of the grace, at
        most 0.5 s), so a 10 s grace shows 9.5 s here at the signal."""
        return self._deadline.at

    def time_left(self) -> float:
        """Seconds until :attr:`deadline` (never negative)."""
        return self._deadline.time_left()

    def drain_time_left(self) -> float:
        """Seconds left for in-flight work to finish on its own before graceful
        cancels it (0 once the drain is over, e.g. in hooks)."""
        if self._drain_end is None:
            return 0.0
        return max(0.0, min(self._drain_end - self._deadline.clock(), self.time_left()))


class Hook:
    __slots__ = ("func", "name", "timeout", "takes_context", "always")

    def __init__(
        self,
        func: Callable[..., Any],
        name: str,
        timeout: float | None,
        takes_context: bool,
        always: bool = False,
    ) -> None:
        self.func, self.name, self.timeout = func, name, timeout
        self.takes_context, self.always = takes_context, always


class HookResults:
    __slots__ = ("ok", "failed", "timed_out", "skipped", "abandoned_threads")

    def __init__(self) -> None:
        self.ok: list[str] = []
        self.failed: list[str] = []
        self.timed_out: list[str] = []
        self.skipped: list[str] = []
        self.abandoned_threads: list[HookThread] = []


class HookThread:
    """The thread a sync hook runs in: a bare thread, since ``threading.Thread.start()``
    waits until the new thread runs, a scheduling round trip on every stop."""

    __slots__ = ("name", "ident", "_running")

    def __init__(self, name: str, target: Callable[[], None]) -> None:
        self.name = name
        self._running = True

        def run() -> None:
            try:
                target()
            finally:
                self._running = False

        self.ident: int = _thread.start_new_thread(run, ())

    def is_alive(self) -> bool:
        return self._running


_registry: list[Hook] = []
_registry_lock = threading.Lock()


@overload
def on_shutdown(func: F, /) -> F: ...
@overload
def on_shutdown(*, timeout: float | None = None, always: bool = False) -> Callable[[F], F]: ...
def on_shutdown(func: Any = None, /, *, timeout: float | None = None, always: bool = False) -> Any:
    """Register ``func`` to run during the shutdown sequence.

    Use as ``@on_shutdown`` or ``@on_shutdown(timeout=3.0)``. The hook may be async
    or sync and may take one positional argument, a :class:`ShutdownContext`.
    Hooks run once, last registered first, after the app's tasks were cancelled,
    and only if ``main`` started; ``always=True`` runs the hook also when the stop
    came before ``main`` did (for clean-up that is safe without a started app).

    **Deadline:** the hook gets the smallest of ``timeout``, the time left, and a
    fair share that keeps a slice for each hook after it; after that it is
    abandoned (an async hook is cancelled, a sync hook's thread is left to die
    with the process), logged with its stack, and the next hook runs.
    """
    if timeout is not None:
        timeout = seconds(timeout, "on_shutdown(timeout=...)", low_open=True, example="timeout=3")
    flag(always, "on_shutdown(always=...)")

    def register(f: F) -> F:
        if not callable(f):
            raise UsageError(f"on_shutdown() needs a function, got {f!r}")
        required = required_arguments(f)
        if len(required) > 1:
            raise UsageError(
                f"hook {_name(f)!r} needs {len(required)} arguments ({', '.join(required)});"
                " a hook takes none, or one: the ShutdownContext. Give the others defaults"
            )
        hook = Hook(f, _name(f), None if timeout is None else float(timeout), _takes_arg(f), always)
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


def snapshot() -> list[Hook]:
    """The registered hooks, in registration order (for graceful.testing)."""
    with _registry_lock:
        return list(_registry)


def restore(hooks: list[Hook]) -> None:
    with _registry_lock:
        _registry[:] = hooks


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


def required_arguments(func: Callable[..., Any]) -> list[str]:
    """The names of the arguments a call with none would miss."""
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return []
    kinds = (
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        inspect.Parameter.KEYWORD_ONLY,
    )
    return [p.name for p in params if p.kind in kinds and p.default is inspect.Parameter.empty]


def _reserve_for(later: list[Hook], left: float) -> float:
    """Time kept back for the hooks after the current one."""
    if not later:
        return 0.0
    slice_ = left * FAIR_SHARE / len(later)
    return sum(slice_ if h.timeout is None else min(h.timeout, slice_) for h in later)


async def run_hooks(hooks: list[Hook], ctx: ShutdownContext, deadline: Deadline) -> HookResults:
    """Run ``hooks`` in order, each bounded; never raises."""
    results = HookResults()
    if not ctx.main_started:
        results.skipped = [h.name for h in hooks if not h.always]
        hooks = [h for h in hooks if h.always]
        if results.skipped:
            log.info(
                "main never started, so hooks %s were skipped (register a hook with"
                " @on_shutdown(always=True) to run it even then)",
                results.skipped,
            )
    for i, hook in enumerate(hooks):
        left = deadline.time_left()
        share = left - _reserve_for(hooks[i + 1 :], left)
        bound = min(share, hook.timeout) if hook.timeout is not None else share
        started = deadline.clock()
        try:
            outcome, stack, thread = await _run_one(hook, ctx, bound)
        except Exception:  # a bug of ours must not stop the other hooks
            log.exception("hook %r could not be run", hook.name)
            results.failed.append(hook.name)
            continue
        took = deadline.clock() - started
        if thread is not None:
            results.abandoned_threads.append(thread)
        if outcome is None:
            results.ok.append(hook.name)
            log.debug("hook %r done in %.1f ms", hook.name, took * 1000)
        elif outcome is _TIMED_OUT:
            results.timed_out.append(hook.name)
            if hook.timeout is not None and bound == hook.timeout:
                why = f"its timeout of {bound:.2f} s"
                fix = "Make it faster or raise its timeout."
            elif bound < left:
                why = (
                    f"its share of the window ({bound:.2f} s of the {left:.2f} s left; the rest"
                    f" is kept for the {len(hooks) - i - 1} hook(s) after it)"
                )
                fix = "Give it a timeout, make it faster, or raise --grace."
            else:
                why = f"the shutdown deadline (it had {bound:.2f} s)"
                fix = "Make it faster, or raise --grace."
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


async def _run_one(
    hook: Hook, ctx: ShutdownContext, bound: float
) -> tuple[Any, str, HookThread | None]:
    """Returns (None | exception | _TIMED_OUT, stack of the abandoned hook, abandoned thread)."""
    args = (ctx,) if hook.takes_context else ()
    if inspect.iscoroutinefunction(hook.func):
        outcome, stack = await _run_awaitable(hook.func(*args), hook.name, bound)
        return outcome, stack, None
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

    thread = HookThread(f"graceful-hook:{hook.name}", call)
    finished, _ = await asyncio.wait({done}, timeout=bound)
    if not finished:
        from .stacks import thread_stack

        done.cancel()
        return _TIMED_OUT, thread_stack(thread.ident), thread
    value, error = done.result()
    if error is not None:
        return error, "", None
    if inspect.isawaitable(value):  # e.g. a sync function that returns a coroutine
        outcome, stack = await _run_awaitable(value, hook.name, bound)
        return outcome, stack, None
    return None, "", None


def _resolve(fut: asyncio.Future[Any], outcome: tuple[Any, BaseException | None]) -> None:
    if not fut.done():
        fut.set_result(outcome)


async def _run_awaitable(aw: Awaitable[Any], name: str, bound: float) -> tuple[Any, str]:
    task = asyncio.ensure_future(aw)
    finished, _ = await asyncio.wait({task}, timeout=bound)
    if not finished:
        from .stacks import task_stack

        stack = task_stack(task)
        task.cancel()  # abandoned: not awaited, it may swallow the cancellation
        return _TIMED_OUT, stack
    if task.cancelled():
        return asyncio.CancelledError(f"hook {name!r} was cancelled"), ""
    return task.exception(), ""
