"""The app process: signal handlers, the event loop, ``main`` and the public API.

Signals are caught with ``signal.signal``, not ``loop.add_signal_handler``. The
handler runs in the main thread between two bytecodes, even while a coroutine
blocks the loop thread (``time.sleep`` in async code), so the deadline and its
watchdog start at the signal whatever the app is doing. The handler only
records the signal, arms the watchdog and wakes the loop with
``call_soon_threadsafe`` (as ``asyncio.Runner`` does for SIGINT); the shutdown
itself runs on the loop. A second SIGINT is the one exception: it ends the
process from the handler, because a person at a terminal wants it gone now.
Libraries that replace the handler are dealt with in ``signals``.

Handlers are installed before the app module is imported, so a signal during a
slow import starts the shutdown as soon as the import returns (and the watchdog
bounds the import itself). Nothing is ever set to SIG_IGN: children would
inherit it.

A stop has two steps before the six phases: readiness fails at the trigger
itself (in the signal handler), and with ``--drain-delay`` the app keeps running
for the delay while ``main`` still runs; only then does ``wait_for_shutdown()``
return and the sequence (``sequence``) start.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import logging
import os
import signal
import sys
import threading
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Sequence,
)
from concurrent.futures import Executor
from types import FrameType
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from weakref import WeakSet

from .. import _speak
from .._config import Config, source_example
from .._errors import (
    EXIT_FAILURE,
    EXIT_FORCED,
    ExitCall,
    NotRunningError,
    TargetError,
    UsageError,
    exit_code_of,
)
from .._health.readiness import state as readiness
from .deadline import Deadline, Spare, Watchdog
from .hooks import ShutdownContext, required_arguments, take_hooks
from .signals import SignalGuard, import_uvloop
from .tasks import TaskWatch, in_app

if TYPE_CHECKING:
    from .._health.server import HealthServer
    from .._supervise.control import ControlSocket
    from .notify import Notifier
    from .sequence import StopReport

log = logging.getLogger("graceful")

CUT_SUFFIX = " cut"
"""Figures an integration notes under a name ending so ("requests cut") are work cut at
the end of the drain; the summary shows them in its one "cut" figure."""

T = TypeVar("T")

Main = Callable[[], Awaitable[Any]] | Coroutine[Any, Any, Any]

EXIT_INTERRUPTED = 130  # KeyboardInterrupt raised inside a task (128 + SIGINT)

_current: Run | None = None


class Run:
    """The state of one ``graceful.run()``: what started the shutdown, and when."""

    def __init__(self, config: Config, *, embedded: bool = False) -> None:
        self.config = config
        self.embedded = embedded
        """Running inside somebody else's loop (``graceful.testing``): never exit the
        process, touch only the app's own tasks and children."""
        self.deadline: Deadline | None = None
        self.reason = ""
        self.signal: signal.Signals | None = None
        self.exit_code = 0
        self.sigints = 0
        self.loop: asyncio.AbstractEventLoop | None = None
        # asyncio.Event binds to a loop on first use (3.10+): safe to make before the loop.
        self.begun = asyncio.Event()  # a stop began (set at the trigger)
        self.sequence_started = asyncio.Event()  # the sequence began (phase 1)
        self.main_called = asyncio.Event()
        """Set when ``main`` is called (``main_started``; ``graceful.testing`` waits on it)."""
        self.load_error: BaseException | None = None
        self.main_task: asyncio.Task[Any] | None = None
        self.main_listens = False
        self.main_accounted = False  # main's end already decided the exit code
        self.listeners: WeakSet[asyncio.Task[Any]] = WeakSet()
        self.protected: WeakSet[asyncio.Future[Any]] = WeakSet()
        self.drain_waker: asyncio.Future[None] | None = None  # the drain waits on it
        self.drain_end: float | None = None
        self.notes: dict[str, int] = {}
        self.requests_in_flight = 0
        """Requests the integrations are handling now (``graceful_requests_in_flight``)."""
        self.failures: set[str] = set()
        self.excluded_pids: set[int] = set()
        self.deadline_missed = False
        self.sequence_done = False  # the summary is logged; only the interpreter's exit is left
        self.report: StopReport | None = None  # what the sequence did, once it ran
        self._once = threading.Lock()
        self.watchdog = Watchdog(self._deadline_reached)
        self.guard = SignalGuard(self.handle_signal, self._library_drains, config.stop_signals)
        self.tasks = TaskWatch(self._task_died, lambda: self.deadline is not None, record=embedded)
        self.executor: Executor | None = None  # ours, where the loop's own is out of reach
        self.health: HealthServer | None = None  # --health-port: started by execute()
        self.notifier: Notifier | None = None  # NOTIFY_SOCKET set: made by execute()
        self.control: ControlSocket | None = None  # --control-socket: bound by execute()
        self.spare = Spare()  # a descriptor kept for the stop (see deadline.Spare)

    # -- starting the shutdown ---------------------------------------------------------

    def trigger(self, reason: str, sig: signal.Signals | None = None, exit_code: int = 0) -> bool:
        """Record the first cause of the shutdown and start the deadline.

        Returns False if the shutdown had already started. Called from the loop,
        from the signal handler, or before the loop exists; never blocks.
        """
        # Python signal handlers can nest (a second signal runs its handler between
        # two bytecodes of the first), so check-then-set is not enough: a lock
        # acquired without blocking is atomic and never waits.
        if not self._once.acquire(blocking=False):
            return False
        readiness.stopping = True  # first: the health server answers 503 from here on
        self.deadline = Deadline(self.config.grace)
        self.reason, self.signal, self.exit_code = reason, sig, exit_code
        self.watchdog.arm(self.deadline)
        if self.notifier is not None:
            self.notifier.stopping()
        return True

    def handle_signal(self, signum: int, frame: FrameType | None) -> None:
        """The SIGTERM/SIGINT handler: record, arm the deadline, wake the loop."""
        sig = signal.Signals(signum)
        echo = self.guard.is_echo(signum)
        if sig == signal.SIGINT and not echo:
            self.sigints += 1
            if self.sigints >= 2:
                force_exit(EXIT_FORCED, "second SIGINT")
        first = self.trigger(sig.name, sig)
        loop = self.loop
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self._signal_seen, sig, first, echo)
            except RuntimeError:  # the loop is closing: the shutdown is under way anyway
                pass

    def _signal_seen(self, sig: signal.Signals, first: bool, echo: bool) -> None:
        keep_logger_enabled()  # before the first line of the stop, which must not be lost
        if first:
            log.info("%s received: shutting down within %g s", sig.name, self.config.grace)
            self._wake()
        elif echo:
            log.debug("%s raised again by the library whose handler was called; ignored", sig.name)
        elif sig == signal.SIGINT:
            log.warning("SIGINT received during shutdown; press Ctrl-C again to force exit")
        else:
            log.info("%s received again during shutdown; ignored", sig.name)

    def request(self, exit_code: int, reason: str) -> None:
        keep_logger_enabled()
        if self.trigger(reason, None, exit_code):
            log.info("shutdown requested (%s), exit code %d", reason, exit_code)
            self._wake()

    def _wake(self) -> None:
        self.begun.set()

    def _deadline_reached(self) -> None:
        """Runs on the watchdog thread at the hard deadline."""
        if self.embedded:
            self.deadline_missed = True
            _speak.say("ERROR", f"deadline of {self.config.grace:g} s reached (embedded run)")
            return
        # Out of descriptors with the loop blocked, the stop path never loaded and the
        # loop never freed the spare: the import below, /proc and stderr need it here.
        self.spare.free()
        try:
            from .stacks import thread_stack

            stack = thread_stack(threading.main_thread().ident)
        except Exception as exc:  # whatever happens, the process ends below
            stack = f"(not available: {type(exc).__name__}: {exc})"
        _speak.say("ERROR", f"the main thread at the deadline (innermost last):\n{stack}")
        where = (
            "while the interpreter exited (a blocking atexit handler or thread)"
            if self.sequence_done
            else "with the shutdown still running (a blocked loop, import or thread)"
        )
        force_exit(
            EXIT_FAILURE, f"deadline of {self.config.grace:g} s after {self.reason} reached {where}"
        )

    def _library_drains(self) -> None:
        # A library took the stop handlers (uvicorn's Server.serve(), ...): it drains on
        # its own when called at phase 1, and main returns once it has; wait for it.
        self.main_listens = True

    def _task_died(self, task: asyncio.Task[Any], error: BaseException) -> None:
        keep_logger_enabled()
        policy = self.config.task_errors
        then = (
            "starting the shutdown (--task-errors shutdown)"
            if policy == "shutdown"
            else "the service runs on without it; --task-errors shutdown would stop it instead"
        )
        log.error(
            "task %r died of %s and nothing took its result; %s",
            task.get_name(),
            type(error).__name__,
            then,
            exc_info=(type(error), error, error.__traceback__),
        )
        if policy == "shutdown":
            self.request(EXIT_FAILURE, f"task {task.get_name()!r} raised {type(error).__name__}")

    def escaped(self, exc: BaseException) -> None:
        """SystemExit or KeyboardInterrupt raised inside a task left the event loop:
        start the sequence with its exit code instead of skipping it."""
        code = EXIT_INTERRUPTED if isinstance(exc, KeyboardInterrupt) else exit_code_of(exc)
        what = type(exc).__name__ + (f"({exc.code!r})" if isinstance(exc, SystemExit) else "")
        log.error("%s was raised inside a task; running the shutdown sequence", what)
        if not self.trigger(f"{what} in a task", None, code) and code and not self.exit_code:
            self.exit_code = code
        self._wake()

    def context(self) -> ShutdownContext:
        assert self.deadline is not None
        return ShutdownContext(
            self.reason,
            self.signal,
            self.exit_code,
            self.deadline,
            main_started=self.main_started,
            drain_end=self.drain_end,
        )

    @property
    def main_started(self) -> bool:
        """``main`` was called (hooks registered without ``always`` run only then)."""
        return self.main_called.is_set()

    def note(self, what: str, count: int, *, failure: bool = True) -> None:
        """Add ``count`` to a figure of the summary line (e.g. "requests cut"); a
        ``failure`` figure above 0 makes the exit code 1 (unless the app's is non-zero)."""
        self.notes[what] = self.notes.get(what, 0) + count
        if failure:
            self.failures.add(what)

    def cut_count(self) -> int:
        """Work cut at the end of the drain so far: tasks, and what integrations noted."""
        tasks = len(self.report.drain_cut) if self.report is not None else 0
        return tasks + sum(n for what, n in self.notes.items() if what.endswith(CUT_SUFFIX))

    def let_the_app_go(self) -> None:
        """Drop what holds the app's frames before the interpreter exits.

        The watchdog's daemon thread keeps this object alive to the end, and main's
        task holds its CancelledError, whose traceback holds main's frame and with it
        the app module's globals: the interpreter's finalization would then never
        clear that module, and a file the app opened at module level and never
        closed would lose its buffered data (plain ``python`` flushes it).
        """
        self.main_task = self.tasks.exempt = None
        self.report = None

    def wake_the_drain(self) -> None:
        """Work to drain was added (``listen``, ``protect``): the drain looks again."""
        waker = self.drain_waker
        if waker is not None and not waker.done():
            waker.set_result(None)

    # -- the app ------------------------------------------------------------------------

    async def main(self, target: Main | None) -> int:
        loop = self.loop = asyncio.get_running_loop()
        if not self.embedded and not hasattr(loop, "_default_executor"):
            # uvloop keeps its default executor private, and its
            # shutdown_default_executor() joins the threads, blocking the loop on a stuck
            # one: give it ours, which phase 6 shuts down without waiting. asyncio's own
            # is reachable, and made only when the app first uses it (no import here).
            from concurrent.futures import ThreadPoolExecutor

            self.executor = ThreadPoolExecutor(thread_name_prefix="graceful-executor")
            loop.set_default_executor(self.executor)
        if self.health is not None:  # the loop-lag heartbeat, and the loop for the checks
            self.health.attach(loop)
        if self.notifier is not None:
            self.notifier.attach(loop)
        if self.control is not None:  # python -m graceful ctl
            await self.control.serve()
        if self.config.handle_signals:
            self.guard.watch(loop)
        self.tasks.install(loop)
        try:
            if self.deadline is not None:  # a signal came during the import
                log.info("%s received while starting: shutting down", self.reason)
            if self.load_error is not None:
                self.trigger("the app failed to start", None, exit_code_of(self.load_error))
            elif self.deadline is None and target is not None:
                await self._run_main(target)
            self.spare.free()  # the stop path may need one (see below)
            from .sequence import shutdown  # here: a run that never stops never loads it

            code = await shutdown(self)
            self.sequence_done = True
            return code
        finally:
            self.tasks.uninstall()
            self.guard.stop_watching()

    async def _run_main(self, target: Main) -> None:
        assert self.deadline is None
        token = in_app.set(True)
        try:
            task = self.main_task = asyncio.ensure_future(_call_main(self, target))
        finally:
            in_app.reset(token)
        self.tasks.exempt = task
        task.set_name(f"main ({_describe(target)})")
        begun = asyncio.ensure_future(self.begun.wait())
        await asyncio.wait({task, begun}, return_when=asyncio.FIRST_COMPLETED)
        begun.cancel()
        if task.done():
            self._main_finished(task)
            return
        delay = self.config.drain_delay
        if delay > 0:
            # 0. The drain delay: readiness already fails; main keeps running so that
            #    the requests the balancers still send are served until they stop.
            assert self.deadline is not None
            log.info(
                "draining for %g s: /readyz fails, the app keeps serving; the sequence starts"
                " after it",
                delay,
            )
            await asyncio.wait({task}, timeout=min(delay, self.deadline.time_left()))
            if task.done():
                log.info("main finished during the drain delay; starting the sequence now")

    def _main_finished(self, task: asyncio.Task[Any]) -> None:
        self.main_accounted = True
        if task.cancelled():
            self.trigger("main was cancelled", None, EXIT_FAILURE)
            return
        error = task.exception()
        if error is not None:
            log.error("main raised %s", type(error).__name__, exc_info=error)
            self.trigger("main raised", None, EXIT_FAILURE)
            return
        result = task.result()
        if isinstance(result, ExitCall):
            self.trigger(f"main called sys.exit({result.code!r})", None, exit_code_of(result))
        else:
            self.trigger("main returned", None, exit_code_of(result))


def keep_logger_enabled() -> None:
    """Undo ``logging.config.dictConfig``'s ``disable_existing_loggers`` for graceful's
    logger: its shutdown diagnostics (errors included) must not vanish with it."""
    if log.disabled:
        log.disabled = False
        log.warning(
            "the app's logging configuration disabled the 'graceful' logger"
            " (dictConfig's disable_existing_loggers); graceful enabled it again so that"
            " shutdown problems are not lost. To silence graceful, set the level of the"
            " 'graceful' logger instead"
        )


def _main_reached_an_await() -> None:
    readiness.start_main()
    asyncio.get_running_loop().call_soon(_load_the_stop_path)


def _load_the_stop_path() -> None:
    """Import what only a stop needs, once main is running: not on the start-up path
    (every start pays for it), not on the stop path (a stop would wait for it)."""
    try:
        from .._pid1 import children  # noqa: F401
        from . import sequence, stacks  # noqa: F401
    except OSError:  # out of descriptors already: the stop loads it with its spare one
        pass


async def _call_main(run: Run, target: Main) -> Any:
    # Ready (with --readiness auto) once main has run up to its first await, not at
    # its first line: what main sets up synchronously before that (an integration
    # blocking readiness until its server listens, say) is in place by then.
    # A main that ends within that first step (it raised at once) is never ready.
    ready = asyncio.get_running_loop().call_soon(_main_reached_an_await)
    run.main_called.set()
    try:
        result: Any = target() if callable(target) else target
        if inspect.isawaitable(result):
            return await result
        if callable(target):
            log.warning(
                "main %s is not async: it ran on the event loop's thread, and the loop (and"
                " with it the shutdown sequence) waited until it returned; define it with"
                " async def",
                _describe(target),
            )
        return result
    except SystemExit as exc:  # sys.exit() inside main: an exit code, not a crash
        return ExitCall(exc.code)
    finally:
        ready.cancel()


def check_main(target: object, name: str) -> None:
    """Refuse at start what cannot be a ``main``: raises :class:`TargetError`."""
    if inspect.isasyncgenfunction(target) or inspect.isgeneratorfunction(target):
        kind = "an async generator" if inspect.isasyncgenfunction(target) else "a generator"
        raise TargetError(
            f"{name} is {kind} function (it has a yield), not a main to run;"
            " make it an async def without yield, and iterate the generator inside it"
        )
    required = required_arguments(target)  # type: ignore[arg-type]
    if required:
        raise TargetError(
            f"{name} needs the argument(s) {', '.join(required)}, but main is called with none;"
            " give them defaults, or read what you need from sys.argv or the environment"
        )


def _describe(target: object) -> str:
    if inspect.iscoroutine(target):
        return getattr(target, "__qualname__", repr(target))
    module = getattr(target, "__module__", None)
    name = getattr(target, "__qualname__", None) or repr(target)
    return f"{module}:{name}" if module else name


def force_exit(code: int, why: str) -> None:
    """End the process now: SIGKILL the descendants, say why on stderr, ``os._exit``.

    Used by the second SIGINT and the watchdog; takes no lock, so it works from a
    signal handler and while another thread is stuck.
    """
    try:
        from .._pid1.children import descendant_pids, kill_each  # (per-module import locks)

        killed = kill_each(descendant_pids(), signal.SIGKILL)
    except Exception:  # /proc unreadable, no descriptor for the import: exit all the same
        killed = 0
    extra = f", {killed} child process(es) killed" if killed else ""
    from .hooks import snapshot  # loaded with the runtime: no import lock to wait for

    left = [hook.name for hook in snapshot()]  # taken when phase 4 starts: these never ran
    if left:
        extra += f"; the shutdown hooks {left} did not run (state they save was not saved)"
    _speak.say("ERROR", f"{why}: exiting now with code {code}{extra}")
    os._exit(code)


# -- running ------------------------------------------------------------------------------


def execute(
    config: Config,
    load: Callable[[], Main],
    *,
    unblock: frozenset[signal.Signals] = frozenset(),
    cli: bool = False,
) -> int:
    """Run the app that ``load()`` imports, with the whole shutdown machinery.

    ``cli``: the process ends right after (``python -m graceful``), so the stop
    handlers and the watchdog stay in place while the interpreter exits.
    """
    global _current
    if _current is not None:
        raise UsageError("graceful.run() is already running in this process; call it only once")
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise UsageError(
            "graceful.run() was called inside a running event loop; call it from synchronous"
            " code (it makes the loop), and use graceful.wait_for_shutdown() inside the app"
        )
    if config.handle_signals and threading.current_thread() is not threading.main_thread():
        raise UsageError(
            "graceful.run() must be called from the main thread to handle SIGTERM/SIGINT;"
            " call it there, or pass handle_signals=False"
        )
    new_loop = loop_factory(config)
    _speak.use(config.log_format)
    configure_logging(config.log_level)
    if not cli and os.getpid() == 1:
        log.warning(
            "graceful.run() is PID 1 but runs no init: orphans will not be reaped and"
            " signals without a handler are dropped; start the app with"
            " python -m graceful MODULE:ATTR instead, which runs graceful's init"
        )
    run = open_run(config)
    run.spare.keep()
    try:
        if os.environ.get("NOTIFY_SOCKET"):  # a service manager listens (loaded only then)
            from .notify import Notifier

            run.notifier = Notifier.from_environment()
            if run.notifier is not None:
                readiness.on_change = run.notifier.readiness_changed
        if config.health_port is not None:
            # Bound before the app is imported (a port in use is a usage error), and
            # started while the stop signals are still blocked, so its threads keep
            # them blocked. Imported only when on: start-up time is a measured figure.
            from .._health.server import HealthServer

            run.health = HealthServer.start(config)
            run.health.spare = run.spare
        if config.control_socket is not None:  # bound before the import, as the port is
            from .._supervise.control import ControlSocket

            run.control = ControlSocket.bind(
                config.control_socket, config.spelling("control_socket")
            )
        if config.handle_signals:
            run.guard.install()
            run.guard.app_imported_after = cli
            if unblock:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, unblock)
        target: Main | None = None
        if cli:
            # What the interpreter, the standard library and graceful have made so far
            # is moved out of the collector's sight for good: the collections of the
            # interpreter's exit then skip it, which takes 4 ms off every exit (most of
            # the time from SIGTERM to the end of the process; see docs/internals.md).
            # The app's own objects come after, so they are collected and finalized at
            # exit as under plain python. Not in graceful.run(), where the app's modules
            # are already imported. The collector, off since the start (__main__), is
            # on again from here: the app's import and run are collected as usual.
            gc.freeze()
            gc.enable()
        try:
            target = load()
        except TargetError as exc:
            # MODULE:ATTR is wrong: the app never started, so the hooks its import
            # registered do not run (a state-saving hook would save an empty state).
            take_hooks()
            _did_not_start(exc)
            raise
        except Exception as exc:  # the app's own import failed
            run.load_error = exc
            log.error("the app failed to start\n%s", in_the_apps_code(exc))
            _did_not_start(exc)
        except SystemExit as exc:
            run.load_error = exc
        else:
            _warn_if_hooks_do_not_fit(config)
        loop = new_loop()
        try:
            code = _run_until_done(loop, run, target)
        finally:
            run.loop = None
            loop.close()
        from .sequence import blocking_threads

        stuck = [t.name for t in blocking_threads()]
        if stuck:
            # The shutdown already waited for these until the deadline. The normal exit
            # would join them and overrun the window, so leave without them.
            log.error("threads %s still running at the deadline; exiting without them", stuck)
            flush_logging()
            os._exit(code or EXIT_FAILURE)
        flush_logging()
        return code
    finally:
        if run.health is not None:  # closed in phase 6 already, unless the run failed
            run.health.close()
        if run.notifier is not None:
            readiness.on_change = None
            run.notifier.close()
        if run.control is not None:
            run.control.close()
        if not cli:
            run.guard.restore()
            close_run(run)
        else:
            if run.sequence_done:
                run.guard.ignore_from_now_on()
            run.let_the_app_go()


def open_run(config: Config, *, embedded: bool = False) -> Run:
    """Make a new run the process's current one: the door ``execute()`` and
    ``graceful.testing`` share. Refused while another is current."""
    global _current
    if _current is not None:
        raise UsageError("graceful runs one app at a time in a process; end the first one first")
    run = Run(config, embedded=embedded)
    readiness.begin(config.readiness)
    _current = run
    return run


def close_run(run: Run) -> None:
    """The run is over: its watchdog ends, and it is no longer current."""
    global _current
    run.watchdog.close()
    if _current is run:
        _current = None


def current() -> Run | None:
    """The current run, if any (for the parts of graceful that meet it)."""
    return _current


def in_the_apps_code(error: BaseException) -> str:
    """The traceback of ``error`` with graceful's and importlib's frames left out: the
    error, and where in the app's code it came from (an app's bad import, or a misuse
    of graceful's API at import time, starts a dozen frames deep in graceful)."""
    import traceback

    ours = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep  # graceful/
    importlib_init = os.path.join("importlib", "__init__.py")

    def theirs(frame: traceback.FrameSummary) -> bool:
        name = frame.filename
        return not (
            name.startswith(ours) or name.startswith("<frozen ") or name.endswith(importlib_init)
        )

    shown = traceback.TracebackException.from_exception(error)
    kept = [f for f in shown.stack if theirs(f)]
    shown.stack = traceback.StackSummary.from_list(kept or list(shown.stack))
    return "".join(shown.format()).rstrip("\n")


def _did_not_start(error: BaseException) -> None:
    """A worker of ``--workers`` tells its parent that restarting it is useless."""
    # workers.NO_START_FILE, spelled out: importing workers loads the supervisor.
    if "GRACEFUL_NO_START_FILE" in os.environ:
        from .._supervise.workers import tell_the_parent_it_did_not_start

        tell_the_parent_it_did_not_start(exit_code_of(error))


def _warn_if_hooks_do_not_fit(config: Config) -> None:
    """One line at start-up when the hooks' declared timeouts cannot fit the window."""
    from .hooks import snapshot

    hooks = snapshot()
    if not hooks:
        return
    from .budget import split
    from .deadline import safety_margin

    left = config.grace - safety_margin(config.grace) - config.drain_delay
    budget = split(left, (h.timeout for h in hooks))
    if budget.short():
        log.warning(
            "the %d shutdown hook(s) declare %.1f s (their timeouts, 1 s for each without one),"
            " but %s leaves them %.1f s after the drain's minimum and the cancellation's"
            " reserve: they will be cut short. Raise %s, or lower the hooks' timeouts",
            len(hooks),
            budget.hooks_wanted,
            source_example(config.spelling("grace"), f"{config.grace:g}"),
            budget.hooks,
            config.spelling("grace"),
        )


def _run_until_done(loop: asyncio.AbstractEventLoop, run: Run, target: Main | None) -> int:
    whole = loop.create_task(run.main(target))
    while True:
        try:
            return loop.run_until_complete(whole)
        except (SystemExit, KeyboardInterrupt) as exc:
            if whole.done():
                raise
            run.escaped(exc)  # and go on running the loop: the sequence comes next


def loop_factory(config: Config) -> Callable[[], asyncio.AbstractEventLoop]:
    name = config.loop
    if name in ("auto", "uvloop"):
        try:
            uvloop = import_uvloop()
        except ImportError:
            if name == "uvloop":
                spelling = config.spelling("loop")
                raise UsageError(
                    f"{spelling} uvloop needs the uvloop package: pip install"
                    f" 'graceful-runtime[uvloop]', or use"
                    f" {source_example(spelling, repr('asyncio') if spelling == 'loop' else 'asyncio')}"
                ) from None
        else:
            log.debug(
                "event loop: uvloop %s (%s %s)",
                getattr(uvloop, "__version__", "?"),
                config.spelling("loop"),
                name,
            )
            factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
            return factory
    log.debug("event loop: asyncio (%s %s)", config.spelling("loop"), name)
    return asyncio.new_event_loop


class _OnlyWithoutRootHandlers(logging.Filter):
    """Lets graceful's own stderr handler speak only while the app has not set up
    logging; afterwards graceful's records reach the app's handlers through the root."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not logging.getLogger().handlers


def configure_logging(level: str) -> None:
    log.setLevel(level)
    ours: list[logging.Handler] = [
        h for h in log.handlers for f in h.filters if isinstance(f, _OnlyWithoutRootHandlers)
    ]
    if not ours:
        stream = logging.StreamHandler(sys.stderr)
        stream.addFilter(_OnlyWithoutRootHandlers())
        log.addHandler(stream)
        ours = [stream]
    json_mode = _speak.json_mode()
    for handler in ours:
        handler.setFormatter(
            JsonFormatter() if json_mode else logging.Formatter(_speak.log_format())
        )
    if json_mode and not isinstance(logging.lastResort, _JsonLastResort):
        # The app's own records while it has not set up logging: what the standard
        # library's last resort prints (WARNING and above), as JSON. logging.basicConfig()
        # and dictConfig() still work: the last resort is not one of the root's handlers.
        logging.lastResort = _JsonLastResort()


class JsonFormatter(logging.Formatter):
    """Records as graceful's JSON lines; a record's ``fields`` (``extra={"fields": {...}}``)
    join the object."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + self.formatException(record.exc_info)
        fields = getattr(record, "fields", None)
        return _speak.json_line(
            record.created,
            record.levelname,
            record.name,
            message,
            fields if isinstance(fields, dict) else None,
        )


class _JsonLastResort(logging.StreamHandler):  # type: ignore[type-arg]
    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self.setLevel(logging.WARNING)
        self.setFormatter(JsonFormatter())


def flush_logging() -> None:
    for logger in (log, logging.getLogger()):
        for handler in logger.handlers:
            try:
                handler.flush()
            except Exception:
                pass


# -- public API ---------------------------------------------------------------------------


def run(
    main: Main,
    *,
    grace: float = 10.0,
    drain_delay: float = 0.0,
    loop: Literal["auto", "asyncio", "uvloop"] = "auto",
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO",
    log_format: Literal["text", "json"] = "text",
    task_errors: Literal["log", "shutdown"] = "log",
    health_port: int | None = None,
    health_host: str = "0.0.0.0",
    readiness: Literal["auto", "manual"] = "auto",
    liveness_max_lag: float = 5.0,
    metrics: bool = False,
    handle_signals: bool = True,
    stop_signals: Sequence[str | int] = (),
    control_socket: str | None = None,
) -> int:
    """Run ``main`` (an async function, or a coroutine) until it returns or a stop
    signal arrives, then shut down within ``grace`` seconds; return the exit code.

    Use as ``sys.exit(graceful.run(main))``. A stop is started by SIGTERM, SIGINT,
    ``request_shutdown()``, or ``main`` returning or raising. At once, readiness
    fails; with ``drain_delay`` the app then keeps running for the delay (while
    ``main`` runs). Then the sequence, inside ``grace``:

    1. Announce: ``wait_for_shutdown()`` returns; libraries that had taken the
       signal handlers are called; the budget is split: the drain may run until
       only the hooks' declared timeouts (1 s for a hook that declares none) and
       the cancellation's reserve (0.5 s) are left.
    2. Stop the supervised processes (each with its stop signal, dependants
       first) and send SIGTERM to every other descendant process, so they use
       the window too.
    3. Drain, then cancel: ``main`` (if it awaits ``wait_for_shutdown()`` itself or
       runs a server through an integration), the tasks woken by
       ``wait_for_shutdown()`` and ``protect()``-ed work get the drain budget to
       finish on their own; a ``main`` that does not listen is cancelled at once.
       What is still running at the end of the drain is cut (cancelled, counted as
       a failure), then every other task is cancelled. Tasks that refuse are
       named, with their stacks.
    4. Run the ``@on_shutdown`` hooks (only if ``main`` started, or registered with
       ``always=True``), last registered first, each bounded by its timeout, the
       time left and a fair share; a failing or hung hook does not stop the next.
    5. Wait for the descendants until the deadline, SIGKILL the rest. Nothing is
       reaped here, so the app's own ``subprocess``/asyncio children keep their
       exit statuses.
    6. Shut the executor down without waiting, flush the logs, exit.

    **Deadline:** the process exits within ``grace`` seconds of the first stop
    signal, whatever the app does; a watchdog thread ends it (exit code 1) if the
    sequence itself cannot finish. The handlers for SIGTERM and SIGINT are
    restored when ``run()`` returns. A second SIGINT exits at once with code 130.
    ``stop_signals`` (``["SIGQUIT"]``) start the same stop as SIGTERM.
    ``control_socket``: a path where ``python -m graceful ctl`` can see and restart
    the supervised processes.
    """
    config = Config(
        grace=grace,
        loop=loop,
        log_level=log_level,
        handle_signals=handle_signals,
        drain_delay=drain_delay,
        task_errors=task_errors,
        health_port=health_port,
        health_host=health_host,
        readiness=readiness,
        liveness_max_lag=liveness_max_lag,
        stop_signals=stop_signals,
        control_socket=control_socket,
        log_format=log_format,
        metrics=metrics,
    )
    if callable(main):
        check_main(main, _describe(main))
    return execute(config, lambda: main)


def request_shutdown(exit_code: int = 0, reason: str = "requested") -> None:
    """Start the shutdown as a SIGTERM would (drain delay included, libraries that
    took the signal handlers told to stop); later calls are ignored.

    Safe to call from any thread. Raises :class:`NotRunningError` outside ``run()``.
    """
    if isinstance(exit_code, bool) or not isinstance(exit_code, int) or not 0 <= exit_code <= 255:
        raise UsageError(
            f"request_shutdown(exit_code=...) must be an exit status from 0 to 255, got"
            f" {exit_code!r}"
        )
    run = _require_run("request_shutdown()")
    loop = run.loop
    if loop is None or _in_loop_thread(loop):
        run.request(exit_code, reason)
    else:
        loop.call_soon_threadsafe(run.request, exit_code, reason)


def is_shutting_down() -> bool:
    """True from the first instant of a stop (drain delay included); False when
    nothing runs."""
    return _current is not None and _current.deadline is not None


async def wait_for_shutdown() -> ShutdownContext:
    """Return when the shutdown sequence starts (after the drain delay), with its
    :class:`ShutdownContext`: ``drain_time_left()`` is the time this code has to
    finish its work before graceful cancels it.

    Code waiting here runs before any task is cancelled. A task that returns from
    here is given the drain budget to finish; when ``main`` itself awaits it,
    ``main`` is given the drain budget too instead of being cancelled at once.

    **Cancellation:** like any await, it raises CancelledError when its task is
    cancelled. **Deadline:** none of its own; it returns at the sequence's start.
    """
    run = _require_run("wait_for_shutdown()")
    if run.loop is None or not _in_loop_thread(run.loop):
        raise NotRunningError("wait_for_shutdown() must be awaited inside the app run by graceful")
    task = asyncio.current_task()
    if task is not None:
        listen(run, task)
    await run.sequence_started.wait()
    return run.context()


def listen(run: Run, task: asyncio.Task[Any]) -> None:
    """Mark ``task`` as one that will finish on its own after the stop (drain budget)."""
    if task is run.main_task:
        run.main_listens = True
    else:
        run.listeners.add(task)
    run.wake_the_drain()


def protect(aw: Awaitable[T]) -> Awaitable[T]:
    """Keep ``aw`` running through a stop until the drain budget ends, instead of
    cancelling it with the task that awaits it.

    Use as ``await graceful.protect(save(order))``. The work runs in a task of its
    own; the awaiting task may still be cancelled (it then gets CancelledError while
    the work goes on). Work protected after the stop began (during the drain) is
    drained too. **Deadline:** protected work still running when the drain budget
    ends is cancelled and reported as cut.
    """
    run = _require_run("protect()")
    task = asyncio.ensure_future(aw)
    run.protected.add(task)
    run.wake_the_drain()
    return asyncio.shield(task)


async def until_shutdown(source: AsyncIterable[T]) -> AsyncIterator[T]:
    """Yield the items of ``source`` until the shutdown sequence starts (phase 1, after
    the drain delay), then end, so a stream built on it ends cleanly at the stop.

    Use it in streaming and SSE handlers, where a client would otherwise hold the
    response open until the drain budget cuts it::

        async def events():
            async for tick in graceful.until_shutdown(ticks()):
                yield f"data: {tick}\n\n"

    The wait for the next item is cancelled at the stop, and ``source`` is closed.
    Outside ``graceful.run()`` (an app's own tests) it yields every item of ``source``.
    **Cancellation:** cancelling the consumer cancels the wait and closes ``source``.
    """
    if not hasattr(source, "__aiter__"):
        raise UsageError(
            f"until_shutdown() needs an async iterable (an async generator, say), got"
            f" {type(source).__name__}; for a plain iterable, iterate it in an async generator"
        )
    iterator = aiter(source)
    run = _current
    loop = run.loop if run is not None else None
    try:
        if run is None or loop is None or not _in_loop_thread(loop):
            async for item in iterator:
                yield item
            return
        stop = run.sequence_started
        stopped = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                following = asyncio.ensure_future(_next(iterator))
                either: set[asyncio.Future[Any]] = {following, stopped}
                try:
                    await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
                except asyncio.CancelledError:  # the consumer is cancelled: so is the wait
                    following.cancel()  # (the source is closed below, once it has unwound)
                    await asyncio.wait({following})
                    raise
                if not following.done():
                    following.cancel()
                    await asyncio.wait({following})
                    return
                try:
                    item = following.result()
                except StopAsyncIteration:
                    return
                yield item
        finally:
            stopped.cancel()
    finally:
        close = getattr(iterator, "aclose", None)
        if close is not None:
            await close()


async def _next(iterator: AsyncIterator[T]) -> T:
    return await iterator.__anext__()


def current_run() -> Run:
    """The run in progress, for graceful's integrations."""
    return _require_run("graceful")


def _require_run(what: str) -> Run:
    if _current is None:
        raise NotRunningError(
            f"{what} was called with no graceful.run() in progress;"
            " start the app with graceful.run(main) or python -m graceful module:main"
        )
    return _current


def _in_loop_thread(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
