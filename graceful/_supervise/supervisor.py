"""Supervised processes: started, restarted with backoff, and stopped in dependency
order inside the app's one grace window.

A :class:`Supervisor` holds :class:`~graceful._supervise.program.Managed` processes (their
life: ``program``; one run of one: ``process``; their output: ``output``; the
restart policy: ``backoff``) and decides the order: spawns one per turn of the
loop, dependencies before dependants, stops dependants first. Tasks appear only
where the app itself awaits (``wait()``, ``stop()``, ``async with``) and in a
SIGHUP rolling restart, which the shutdown supersedes.

How the runtime meets this module: importing it (which only apps that supervise
do) registers it with ``_core.parts``; phase 2 then calls :func:`stop_all` before
its blanket SIGTERM, which skips the process groups of supervised processes
(:func:`owned_by_supervisors`); phase 5 awaits the returned :class:`Stopping`,
whose counts go into the phases' lines and whose summary into the summary line.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import FrameType
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from .._core.deadline import KILL_RESERVE, Deadline
from .._core.parts import register
from .._errors import EXIT_FAILURE, NotRunningError, UsageError
from .notify import NotifySocket
from .options import Options
from .process import describe
from .program import DEFAULT_STOP_TIMEOUT, FINAL, Managed, ProcessState

if TYPE_CHECKING:
    from .._core.runtime import Run

log = logging.getLogger("graceful")
P = ParamSpec("P")
R = TypeVar("R")


class Supervisor:
    """Starts programs, restarts them when they exit, and stops them in order.

    Use as ``async with graceful.Supervisor() as sup:``; leaving the block stops
    every process (dependants first) and waits for them. Under ``graceful.run()``
    the shutdown sequence stops them at its start, inside the grace window.
    """

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._processes: dict[str, Managed] = {}
        self._closing = False
        self._stop_limit_deadline: Deadline | None = None
        self._roll: asyncio.Task[None] | None = None
        self._roll_again = False  # a rolling restart was asked for during one
        self._spawns: deque[Callable[[], None]] = deque()
        self._notify: NotifySocket | None = None

    async def __aenter__(self) -> Supervisor:
        self._bind()
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Stop every process, dependants first, and wait until they are gone.

        During graceful's shutdown the sequence has already stopped them and waits for
        them itself (phase 5), so this returns at once. **Cancellation:** the stop goes
        on; the processes are SIGKILLed at their stop timeout even if nobody waits.
        """
        try:
            if self._stop_limit_deadline is None:
                await self.stop()
        finally:
            _unregister(self)

    def _bind(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise UsageError("this Supervisor belongs to another event loop; make one per loop")
        _register(self)

    @property
    def processes(self) -> list[Managed]:
        """Every process started, in start order."""
        return list(self._processes.values())

    def __getitem__(self, name: str) -> Managed:
        return self._processes[name]

    def start(
        self,
        argv: Sequence[str | os.PathLike[str]],
        *,
        name: str,
        restart: str = "on-failure",
        stop_signal: int = signal.SIGTERM,
        stop_timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        backoff: tuple[float, float] = (0.5, 30.0),
        max_restarts: int = 5,
        restart_window: float = 60.0,
        min_uptime: float = 1.0,
        depends_on: Iterable[Managed | str] = (),
        output: str = "log",
        logger: logging.Logger | None = None,
        essential: bool = False,
        blocks_readiness: bool = False,
        rolling_restart: bool = False,
        pass_fds: Sequence[int] = (),
        on_state: Callable[[Managed, ProcessState], Any] | None = None,
        success_codes: Iterable[int] = (0,),
        ready: str = "uptime",
        death_signal: int = signal.SIGKILL,
    ) -> Managed:
        """Start ``argv`` as a supervised process named ``name``; return its :class:`Managed`.

        The process gets its own process group; ``env`` is added to this process's
        environment. It is restarted when it exits (``restart``: ``"on-failure"``,
        restarted unless it exits with one of ``success_codes``; ``"always"``;
        ``"never"``) after a delay growing from ``backoff[0]`` to ``backoff[1]``
        seconds, with jitter, and back to ``backoff[0]`` after a run that lasted
        longer than the delay before it. It is up (state ``running``) once it has run
        ``min_uptime`` seconds, or, with ``ready="notify"``, once it says ``READY=1``
        on the socket named by ``NOTIFY_SOCKET`` in its environment (systemd's notify
        protocol; a graceful app does it by itself when it is ready). More than
        ``max_restarts`` exits before it was up within ``restart_window`` seconds mark
        it failed (logged once, with its last lines); ``blocks_readiness`` then fails
        ``/readyz``. An ``essential`` process that ends for good stops the whole app,
        with exit code 1 unless it exited with a success code, and one that does not
        stop cleanly at the app's stop (a success code, or its stop signal) makes the
        app's exit code 1. ``depends_on`` starts it once those processes are up; at a
        stop it is stopped before them. ``output``: ``"log"`` (each line to
        ``logger``, by default ``graceful.process.NAME``, prefixed with the name: a
        graceful app's lines at their own level, other lines from stdout at INFO and
        from stderr at WARNING unless they name their level), ``"inherit"`` or
        ``"discard"``. ``rolling_restart``: SIGHUP replaces it (new one up first, then
        the old one stopped). ``on_state(managed, state)`` is called at every state
        change. If this process dies without stopping it (SIGKILLed, say), the kernel
        sends the process ``death_signal``: SIGKILL by default, so nothing outlives
        the app; SIGTERM suits a program that stops by itself in time (a graceful app).

        Raises :class:`UsageError` for a bad argument or a command that is not found.
        """
        self._bind()
        if self._closing:
            raise UsageError(f"cannot start {name!r}: this Supervisor is stopping")
        options = Options(
            argv,
            name=name,
            restart=restart,
            stop_signal=stop_signal,
            stop_timeout=stop_timeout,
            env=env,
            cwd=cwd,
            backoff=backoff,
            max_restarts=max_restarts,
            restart_window=restart_window,
            min_uptime=min_uptime,
            output=output,
            logger=logger,
            essential=essential,
            blocks_readiness=blocks_readiness,
            rolling_restart=rolling_restart,
            pass_fds=pass_fds,
            on_state=on_state,
            success_codes=success_codes,
            ready=ready,
            death_signal=death_signal,
        )
        return self._add(options, depends_on)

    def _add(self, options: Options, depends_on: Iterable[Managed | str]) -> Managed:
        name = options.name
        if name in self._processes:
            raise UsageError(f"a process named {name!r} was started already; give each a new name")
        deps = []
        for dep in depends_on:
            found = self._processes.get(dep) if isinstance(dep, str) else dep
            if not isinstance(found, Managed) or found._sup is not self:
                raise UsageError(
                    f"{name!r} depends on {dep!r}, which this Supervisor did not start;"
                    " start the dependency first and pass it (or its name)"
                )
            deps.append(found)
        if options.essential:
            _require_run(f"essential=True (process {name!r})")
        managed = Managed(self, options, deps)
        self._processes[name] = managed
        for dependency in deps:
            dependency.dependants.append(managed)
        if options.rolling_restart:
            _sighup.install()
        if options.on_state is not None:
            options.on_state(managed, managed.state)  # the first state, as states() yields it
        managed._begin()
        return managed

    async def stop(self) -> dict[str, int | None]:
        """Stop every process for good, dependants first; return the exit statuses by name.

        Each gets its stop signal once the processes that depend on it are gone, and
        SIGKILL after its ``stop_timeout`` (10 s if none; during a shutdown, the
        deadline if sooner). **Cancellation:** the stop goes on; only the wait ends.
        **Signals and deadline:** a shutdown that starts meanwhile takes the stop over
        and brings each SIGKILL forward to its deadline if that comes first.
        """
        self._begin_stop(None)
        for managed in self.processes:
            await managed.wait()
        return {m.name: m.returncode for m in self.processes}

    def rolling_restart(self) -> asyncio.Task[None]:
        """Replace each process started with ``rolling_restart=True``, one at a time:
        the new one is started and counts as started before the old one is stopped.
        What SIGHUP does. One asked for while another runs is done once that one ends
        (a configuration changed mid-roll must reach every process), and any more
        asked for meanwhile are the same one."""
        if self._roll is None or self._roll.done():
            self._roll = asyncio.ensure_future(self._rolling())
        elif not self._roll_again:
            self._roll_again = True
            log.info("rolling restart asked for during one: another follows it")
        return self._roll

    async def _rolling(self) -> None:
        while True:
            chosen = [m for m in self.processes if m.rolling_restart]
            log.info("rolling restart of %s", [m.name for m in chosen])
            for managed in chosen:
                if self._closing:
                    return
                await managed._replace()
            log.info("rolling restart done")
            if not self._roll_again or self._closing:
                return
            self._roll_again = False

    # -- stopping, for the runtime and for stop() -----------------------------------------

    def _begin_stop(self, deadline: Deadline | None) -> None:
        if deadline is not None:
            self._stop_limit_deadline = deadline
        self._closing = True
        if self._roll is not None:
            self._roll.cancel()
        for managed in self.processes:
            if managed._stopping:
                managed._begin_stop(self._stop_limit(managed))  # a sooner deadline
        self._stop_ready()

    def _stop_ready(self) -> None:
        """Stop the processes none of whose dependants is still alive (dependants first)."""
        if not self._closing:
            return
        for managed in self.processes:
            if not managed._stopping and all(d._state in FINAL for d in managed.dependants):
                managed._begin_stop(self._stop_limit(managed))

    def _stop_limit(self, managed: Managed) -> tuple[float, str]:
        """When to SIGKILL ``managed``: its stop_timeout, or the shutdown deadline if sooner."""
        assert self._loop is not None
        now = self._loop.time()
        own = managed.stop_timeout
        deadline = self._stop_limit_deadline or _shutdown_deadline()
        if deadline is not None:
            left = max(0.0, deadline.time_left() - KILL_RESERVE)
            if own is None or left < own:
                return now + left, "the shutdown deadline"
        if own is not None:
            return now + own, f"its stop_timeout of {own:g} s"
        return now + DEFAULT_STOP_TIMEOUT, f"the default stop timeout of {DEFAULT_STOP_TIMEOUT:g} s"

    # -- the notify protocol (ready="notify") ---------------------------------------------

    def _notify_address(self) -> str:
        """The ``NOTIFY_SOCKET`` of this supervisor's programs (the socket is made once)."""
        if self._notify is None:
            assert self._loop is not None
            self._notify = NotifySocket(self._loop, self._notified)
        return self._notify.address

    def _notified(self, pid: int, fields: dict[str, str]) -> None:
        try:
            group = os.getpgid(pid)
        except OSError:
            group = pid  # gone already: only its own pid can tell who it was
        for managed in self.processes:
            for instance in managed._instances:
                if instance.pid in (pid, group):
                    managed._notified(instance, fields)
                    return
        log.debug("notify message from pid %d, not one of ours: %r", pid, fields)

    def _spawn_soon(self, spawn: Callable[[], None]) -> None:
        """Spawn one process per turn of the loop. A fork and exec holds the loop for
        about 1 ms (several on a busy machine): fifty at once would hold it for tens
        of ms, in turns the app's timers and I/O run in between."""
        assert self._loop is not None
        self._spawns.append(spawn)
        if len(self._spawns) == 1:
            self._loop.call_soon(self._spawn_next)

    def _spawn_next(self) -> None:
        assert self._loop is not None
        try:
            self._spawns.popleft()()
        finally:
            if self._spawns:
                self._loop.call_soon(self._spawn_next)

    def _process_finished(self, managed: Managed) -> None:
        self._stop_ready()

    def _essential_ended(self, managed: Managed) -> None:
        from .._core.runtime import request_shutdown

        failed = managed.state == ProcessState.FAILED or not managed.succeeded()
        code = EXIT_FAILURE if failed else 0
        why = "failed" if managed.state == ProcessState.FAILED else "exited"
        (log.error if failed else log.info)(
            "essential process %r %s: stopping the app", managed.name, why
        )
        request_shutdown(exit_code=code, reason=f"essential process {managed.name!r} {why}")


# -- the app's own supervisor and the runtime's seams ---------------------------------------

_live: list[Supervisor] = []
_app: tuple[Run, Supervisor] | None = None
_closed: deque[tuple[Run | None, Managed]] = deque(maxlen=1000)
"""Processes of supervisors closed before the shutdown, for its summary line."""


def _register(sup: Supervisor) -> None:
    if sup not in _live:
        _live.append(sup)


def _unregister(sup: Supervisor) -> None:
    if sup._notify is not None:
        sup._notify.close()
        sup._notify = None
    if sup in _live:
        _live.remove(sup)
        run = _current_run()
        _closed.extend((run, m) for m in sup.processes)
    if not any(m.rolling_restart for s in _live for m in s.processes):
        _sighup.uninstall()


def supervised() -> list[Managed]:
    """Every process of the supervisors on this loop (for ``ctl``)."""
    loop = asyncio.get_running_loop()
    return [m for sup in _live if sup._loop is loop for m in sup.processes]


def _current_run() -> Run | None:
    from .._core.runtime import current

    return current()


def _require_run(what: str) -> Run:
    run = _current_run()
    if run is None or run.loop is None:
        raise NotRunningError(
            f"{what} needs the app to run under graceful; start it with graceful.run(main)"
            " or python -m graceful module:main"
        )
    return run


def _shutdown_deadline() -> Deadline | None:
    run = _current_run()
    return None if run is None else run.deadline


def _takes_the_options_of(
    method: Callable[Concatenate[Any, P], R],
) -> Callable[[Callable[..., R]], Callable[P, R]]:
    """Types the decorated function with ``method``'s parameters (less ``self``): the
    options are written once, in ``Supervisor.start()``."""

    def typed(function: Callable[..., R]) -> Callable[P, R]:
        return function

    return typed


@_takes_the_options_of(Supervisor.start)
def spawn(argv: Sequence[str | os.PathLike[str]], *, name: str, **options: Any) -> Managed:
    """Start a supervised process under the app's own supervisor (the one graceful
    stops at the start of the shutdown sequence); the options are those of
    :meth:`Supervisor.start`. Must be called on the app's loop under ``graceful.run()``.
    """
    global _app
    run = _require_run("graceful.spawn()")
    if _app is None or _app[0] is not run:
        _app = (run, Supervisor())
        _register(_app[1])
    return _app[1].start(argv, name=name, **options)


class Stopping:
    """The supervised processes being stopped by the shutdown sequence."""

    def __init__(self, supervisors: list[Supervisor], closed: list[Managed]) -> None:
        self.supervisors = supervisors
        self.processes = [m for s in supervisors for m in s.processes]
        self.closed = closed
        """Processes of supervisors the app closed before the shutdown, for the summary."""
        self._signalled = sum(bool(m._instances) for m in self.processes)

    async def wait(self, deadline: Deadline) -> None:
        """Wait until every process has ended, at most until the deadline (each has its
        own SIGKILL timer, set no later than that). **Cancellation:** only the wait ends."""
        pending = [m._done for m in self.processes if not m._done.done()]
        if pending:
            await asyncio.wait(pending, timeout=deadline.time_left())
        for sup in self.supervisors:
            if not any(not m._done.done() for m in sup.processes):
                _unregister(sup)

    def signalled(self) -> int:
        return self._signalled

    def killed(self) -> int:
        return sum(m.killed for m in self.processes)

    def failed(self) -> bool:
        """A process had to be killed or failed, or an essential one did not stop cleanly."""
        return any(m.killed or m.state == ProcessState.FAILED for m in self.processes) or any(
            m.essential and not m._clean_stop() for m in self.processes
        )

    def summary(self) -> str:
        """``web=0 feed=SIGTERM stuck=SIGKILL(killed) crashy=1(failed)``."""
        return " ".join(f"{name}={how}" for name, how in self.outcomes().items())

    def outcomes(self) -> dict[str, str]:
        found = {}
        for m in self.closed + self.processes:
            mark = "(killed)" if m.killed else "(failed)" if m.state == ProcessState.FAILED else ""
            found[m.name] = f"{describe(m.returncode)}{mark}"
        return found


def stop_all(deadline: Deadline) -> Stopping | None:
    """Phase 2: stop restarts at once and send every supervised process its stop
    signal, dependants first; the SIGKILL comes at each one's ``stop_timeout`` or
    at the deadline, whichever is first. Returns None when nothing is supervised."""
    loop = asyncio.get_running_loop()
    supervisors = [s for s in _live if s._loop is loop]  # not one left by an earlier loop
    run = _current_run()
    closed = [m for r, m in _closed if r is run]
    _closed.clear()
    if not closed and not any(s.processes for s in supervisors):
        return None
    stopping = Stopping(supervisors, closed)  # (counts the running ones first)
    for sup in supervisors:
        sup._begin_stop(deadline)
    if stopping.processes:
        log.info(
            "stopping supervised processes %s, dependants first",
            [m.name for m in stopping.processes],
        )
    return stopping


def owned_by_supervisors() -> Callable[[int], bool]:
    """A test for the shutdown's ``Descendants``: is this pid in the process group of a
    supervised process? Phase 2's blanket SIGTERM (and phase 5) leave those to the
    supervisor, which stops them in dependency order. The groups are looked up at
    each call, so processes started after this was made are covered too."""

    def owned(pid: int) -> bool:
        try:
            group = os.getpgid(pid)
        except OSError:  # gone
            return False
        return any(i.pid == group for sup in _live for m in sup.processes for i in m._instances)

    return owned


# -- SIGHUP ------------------------------------------------------------------------------------


class _SighupHandler:
    """SIGHUP starts a rolling restart in every live supervisor. The handler only
    records and wakes the loop; a handler the app had is still called after ours."""

    def __init__(self) -> None:
        self.installed = False
        self.previous: Any = None

    def install(self) -> None:
        if self.installed or threading.current_thread() is not threading.main_thread():
            return
        self.previous = signal.signal(signal.SIGHUP, self._handle)
        self.installed = True

    def uninstall(self) -> None:
        """Put the handler that was there back (once no process wants SIGHUP)."""
        if not self.installed or threading.current_thread() is not threading.main_thread():
            return
        signal.signal(signal.SIGHUP, self.previous)
        self.installed = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        for sup in list(_live):
            loop = sup._loop
            if loop is not None and not loop.is_closed():
                try:
                    loop.call_soon_threadsafe(sup.rolling_restart)
                except RuntimeError:
                    pass
        if callable(self.previous):
            self.previous(signum, frame)


_sighup = _SighupHandler()


class _Processes:
    """The supervisors' door into the shutdown sequence (``_core.parts``)."""

    def owns(self) -> Callable[[int], bool]:
        return owned_by_supervisors()

    def stop(self, deadline: Deadline) -> Stopping | None:
        return stop_all(deadline)

    def processes(self) -> list[tuple[str, bool, int]]:
        # From the health server's thread: each list() is taken whole under the GIL.
        return [
            (m.name, m.state == ProcessState.RUNNING, m.restarts)
            for sup in list(_live)
            for m in list(sup._processes.values())
        ]


register(_Processes())
