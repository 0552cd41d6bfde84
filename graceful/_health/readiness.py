"""Readiness: whether this process should receive traffic now.

One small state object shared by the runtime (which marks ``main`` running and the
stop), the app (``set_ready()``, ``@readiness_check``), other parts of graceful
(a supervised process that failed blocks readiness by name) and the health server,
which reads it from its own thread. Writers only assign attributes, so the stop can
be recorded from a signal handler; readers take a consistent enough snapshot
without a lock (each attribute is one atomic store).

Ready means: not stopping, ``main`` running, no component blocking, and either
``--readiness auto`` or the app having called ``set_ready()``. ``set_ready(False)``
takes the app out of rotation in both modes. The user's async checks run only
when the rest says ready, each bounded by its timeout (done by the health server).
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

from .._errors import UsageError
from .._validate import flag, seconds

F = TypeVar("F", bound=Callable[[], Awaitable[Any]])

DEFAULT_CHECK_TIMEOUT = 1.0


class Check:
    __slots__ = ("name", "func", "timeout")

    def __init__(self, name: str, func: Callable[[], Awaitable[Any]], timeout: float) -> None:
        self.name, self.func, self.timeout = name, func, timeout


class Readiness:
    __slots__ = (
        "mode",
        "main_running",
        "app_flag",
        "stopping",
        "blocked",
        "checks",
        "on_change",
        "_lock",
    )

    def __init__(self) -> None:
        self.mode = "auto"
        self.main_running = False
        self.app_flag: bool | None = None
        self.stopping = False
        self.blocked: dict[str, str] = {}
        self.checks: dict[str, Check] = {}
        self.on_change: Callable[[], None] | None = None
        """Told when readiness may have turned on (the notify protocol's READY=1)."""
        self._lock = threading.Lock()

    def begin(self, mode: str) -> None:
        """A run starts: ``main`` is not running yet, no stop has begun, and nothing
        set by an earlier run in this process (``set_ready(False)``, a part's block)
        carries over. Checks registered at import stay."""
        self.mode = mode
        self.main_running = False
        self.stopping = False
        self.app_flag = None
        self.blocked = {}

    def reasons(self) -> list[str]:
        """Why the process is not ready, apart from the user's checks; [] when ready."""
        if self.stopping:
            return ["shutting down"]
        why: list[str] = []
        if not self.main_running:
            why.append("main is not running")
        if self.app_flag is False:
            why.append("set_ready(False) was called")
        elif self.app_flag is None and self.mode == "manual":
            why.append("waiting for set_ready() (--readiness manual)")
        why.extend(f"{name}: {reason}" for name, reason in list(self.blocked.items()))
        return why

    def block(self, name: str, reason: str) -> None:
        """Take the process out of rotation until ``unblock(name)`` (used by graceful's parts)."""
        with self._lock:
            self.blocked = {**self.blocked, name: reason}

    def unblock(self, name: str) -> None:
        with self._lock:
            self.blocked = {k: v for k, v in self.blocked.items() if k != name}
        self.changed()

    def start_main(self) -> None:
        """``main`` reached its first await: the app runs."""
        self.main_running = True
        self.changed()

    def changed(self) -> None:
        on_change = self.on_change
        if on_change is not None:
            on_change()


state = Readiness()


def set_ready(ready: bool = True) -> None:
    """Mark the app ready for traffic (or, with ``False``, take it out of rotation).

    With ``--readiness manual`` the app is not ready until this is called; in both
    modes ``set_ready(False)`` makes ``/readyz`` answer 503 until ``set_ready()``.
    Once a stop has begun, readiness stays off whatever is set here. Safe to call
    from any thread, at any time.
    """
    flag(ready, "set_ready()'s argument")
    state.app_flag = ready
    state.changed()


@overload
def readiness_check(func: F, /) -> F: ...
@overload
def readiness_check(
    *, timeout: float = DEFAULT_CHECK_TIMEOUT, name: str | None = None
) -> Callable[[F], F]: ...
def readiness_check(
    func: F | None = None, /, *, timeout: float = DEFAULT_CHECK_TIMEOUT, name: str | None = None
) -> Any:
    """Register an async function that ``/readyz`` awaits; ready only if every check
    returns without raising within its ``timeout``.

    Use as ``@graceful.readiness_check`` or ``@graceful.readiness_check(timeout=0.5)``.
    A check returning False also counts as failed. Results are listed by name
    (the function's name unless ``name`` is given) in the JSON body of ``/readyz``.

    **Deadline:** a check still running at its timeout is cancelled and reported
    as timed out. Checks are not run once a stop has begun.
    """
    timeout = seconds(timeout, "readiness_check(timeout=...)", low_open=True, example="timeout=0.5")

    def register(f: F) -> F:
        import inspect

        is_async = inspect.iscoroutinefunction(f)  # (a variable: the check must not narrow f)
        if not is_async:
            raise UsageError(
                f"readiness_check needs an async function, got {f!r}; define it with async def"
            )
        check_name = name or getattr(f, "__qualname__", None) or repr(f)
        with state._lock:
            state.checks = {**state.checks, check_name: Check(check_name, f, float(timeout))}
        return f

    return register if func is None else register(func)
