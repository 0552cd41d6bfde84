"""The app process: signal handlers, the event loop, ``main`` and the public API.

Signals are caught with ``signal.signal``, not ``loop.add_signal_handler``. The
handler runs in the main thread between two bytecodes, even while a coroutine
blocks the loop thread (``time.sleep`` in async code), so the deadline and its
watchdog start at the signal whatever the app is doing. The handler only
records the signal, arms the watchdog and wakes the loop with
``call_soon_threadsafe`` (as ``asyncio.Runner`` does for SIGINT); the shutdown
itself runs on the loop. A second SIGINT is the one exception: it ends the
process from the handler, because a person at a terminal wants it gone now.

Handlers are installed before the app module is imported, so a signal during a
slow import starts the shutdown as soon as the import returns (and the watchdog
bounds the import itself). Nothing is ever set to SIG_IGN: children would
inherit it.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from types import FrameType
from typing import TYPE_CHECKING, Any, Literal

from ._children import descendant_pids, kill_each
from ._config import Config
from ._deadline import Deadline, Watchdog, write_stderr
from ._errors import (
    EXIT_FAILURE,
    EXIT_FORCED,
    GracefulError,
    NotRunningError,
    TargetError,
    UsageError,
)
from ._hooks import take_hooks
from ._readiness import state as readiness
from ._shutdown import blocking_threads, shutdown

if TYPE_CHECKING:
    from ._health import HealthServer

log = logging.getLogger("graceful")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

Main = Callable[[], Awaitable[Any]] | Coroutine[Any, Any, Any]

_current: Run | None = None


class Run:
    """The state of one ``graceful.run()``: what started the shutdown, and when."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.deadline: Deadline | None = None
        self.reason = ""
        self.signal: signal.Signals | None = None
        self.exit_code = 0
        self.sigints = 0
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stop_event: asyncio.Event | None = None
        self.load_error: BaseException | None = None
        self.watchdog = Watchdog(self._deadline_reached)
        self._once = threading.Lock()
        self.executor = ThreadPoolExecutor(thread_name_prefix="graceful-executor")
        self.health: HealthServer | None = None  # --health-port: started by execute()

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
        return True

    def handle_signal(self, signum: int, frame: FrameType | None) -> None:
        """The SIGTERM/SIGINT handler: record, arm the deadline, wake the loop."""
        sig = signal.Signals(signum)
        if sig == signal.SIGINT:
            self.sigints += 1
            if self.sigints >= 2:
                force_exit(EXIT_FORCED, "second SIGINT")
        first = self.trigger(sig.name, sig)
        loop = self.loop
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self._signal_seen, sig, first)
            except RuntimeError:  # the loop is closing: the shutdown is under way anyway
                pass

    def _signal_seen(self, sig: signal.Signals, first: bool) -> None:
        if first:
            log.info("%s received: shutting down within %.1f s", sig.name, self.config.grace)
            self._wake()
        elif sig == signal.SIGINT:
            log.warning("SIGINT received during shutdown; press Ctrl-C again to force exit")
        else:
            log.info("%s received again during shutdown; ignored", sig.name)

    def request(self, exit_code: int, reason: str) -> None:
        if self.trigger(reason, None, exit_code):
            log.info("shutdown requested (%s), exit code %d", reason, exit_code)
            self._wake()

    def _wake(self) -> None:
        if self.stop_event is not None:
            self.stop_event.set()

    def _deadline_reached(self) -> None:
        """Runs on the watchdog thread at the hard deadline."""
        force_exit(
            EXIT_FAILURE,
            f"deadline of {self.config.grace:g} s after {self.reason} reached"
            " with the shutdown still running (a blocked loop, import or thread)",
        )

    # -- the app ------------------------------------------------------------------------

    async def main(self, target: Main | None) -> int:
        self.loop = asyncio.get_running_loop()
        self.loop.set_default_executor(self.executor)
        if self.health is not None:  # the loop-lag heartbeat, and the loop for the checks
            self.health.attach(self.loop)
        self.stop_event = asyncio.Event()
        if self.deadline is not None:  # a signal came during the import
            log.info("%s received while starting: shutting down", self.reason)
            self.stop_event.set()
        main_task: asyncio.Task[Any] | None = None
        if self.load_error is not None:
            self.trigger("the app failed to start", None, _code_for(self.load_error))
        elif self.deadline is None and target is not None:
            main_task = asyncio.ensure_future(_call_main(target))
            readiness.main_running = True
            stop = asyncio.ensure_future(self.stop_event.wait())
            await asyncio.wait({main_task, stop}, return_when=asyncio.FIRST_COMPLETED)
            stop.cancel()
            if main_task.done():
                self._main_finished(main_task)
        return await shutdown(self, main_task)

    def _main_finished(self, task: asyncio.Task[Any]) -> None:
        if task.cancelled():
            self.trigger("main was cancelled", None, EXIT_FAILURE)
            return
        error = task.exception()
        if error is not None:
            log.error("main raised %s", type(error).__name__, exc_info=error)
            self.trigger("main raised", None, EXIT_FAILURE)
            return
        result = task.result()
        code = result if isinstance(result, int) and not isinstance(result, bool) else 0
        self.trigger("main returned", None, code)


async def _call_main(target: Main) -> Any:
    try:
        result: Any = target() if callable(target) else target
        return (await result) if inspect.isawaitable(result) else result
    except SystemExit as exc:  # sys.exit() inside main: an exit code, not a crash
        return _code_for(exc)


def _code_for(exc: BaseException) -> int:
    if isinstance(exc, SystemExit):
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        return EXIT_FAILURE
    if isinstance(exc, GracefulError):
        return exc.exit_code
    return EXIT_FAILURE


def force_exit(code: int, why: str) -> None:
    """End the process now: SIGKILL the descendants, say why on stderr, ``os._exit``.

    Used by the second SIGINT and the watchdog; takes no lock, so it works from a
    signal handler and while another thread is stuck.
    """
    try:
        killed = kill_each(descendant_pids(), signal.SIGKILL)
    except OSError:  # /proc unreadable: exit all the same
        killed = 0
    extra = f", {killed} child process(es) killed" if killed else ""
    write_stderr(f"graceful: {why}: exiting now with code {code}{extra}")
    os._exit(code)


# -- running ------------------------------------------------------------------------------


def execute(
    config: Config,
    load: Callable[[], Main],
    *,
    unblock: frozenset[signal.Signals] = frozenset(),
) -> int:
    """Run the app that ``load()`` imports, with the whole shutdown machinery."""
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
    new_loop = loop_factory(config.loop)
    configure_logging(config.log_level)
    run = Run(config)
    readiness.begin(config.readiness)
    previous: dict[signal.Signals, Any] = {}
    _current = run
    try:
        if config.health_port is not None:
            # Bound before the app is imported (a port in use is a usage error), and
            # started while the stop signals are still blocked, so its threads keep
            # them blocked. Imported only when on: start-up time is a measured figure.
            from ._health import HealthServer

            run.health = HealthServer.start(config)
        if config.handle_signals:
            for sig in STOP_SIGNALS:
                previous[sig] = signal.signal(sig, run.handle_signal)
            if unblock:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, unblock)
        target: Main | None = None
        try:
            target = load()
        except TargetError:
            # MODULE:ATTR is wrong: the app never started, so the hooks its import
            # registered do not run (a state-saving hook would save an empty state).
            take_hooks()
            raise
        except Exception as exc:  # the app's own import failed: its hooks do run
            run.load_error = exc
            log.error("the app failed to start", exc_info=exc)
        except SystemExit as exc:
            run.load_error = exc
        loop = new_loop()
        try:
            code = loop.run_until_complete(run.main(target))
        finally:
            run.loop = None
            loop.close()
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
        run.watchdog.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _current = None


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    if name in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if name == "uvloop":
                raise UsageError(
                    "--loop uvloop needs the uvloop package: pip install"
                    " 'graceful-runtime[uvloop]', or use --loop asyncio"
                ) from None
        else:
            factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
            return factory
    return asyncio.new_event_loop


class _OnlyWithoutRootHandlers(logging.Filter):
    """Lets graceful's own stderr handler speak only while the app has not set up
    logging; afterwards graceful's records reach the app's handlers through the root."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not logging.getLogger().handlers


def configure_logging(level: str) -> None:
    log.setLevel(level)
    if not any(isinstance(f, _OnlyWithoutRootHandlers) for h in log.handlers for f in h.filters):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s graceful %(levelname)s: %(message)s"))
        handler.addFilter(_OnlyWithoutRootHandlers())
        log.addHandler(handler)


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
    task_errors: Literal["log", "shutdown"] = "log",
    health_port: int | None = None,
    health_host: str = "0.0.0.0",
    readiness: Literal["auto", "manual"] = "auto",
    liveness_max_lag: float = 5.0,
    handle_signals: bool = True,
) -> int:
    """Run ``main`` (an async function, or a coroutine) until it returns or a stop
    signal arrives, then shut down within ``grace`` seconds; return the exit code.

    Use as ``sys.exit(graceful.run(main))``. The shutdown sequence, started by
    SIGTERM, SIGINT, ``request_shutdown()`` or ``main`` returning or raising:

    1. Mark shutting down; wake ``wait_for_shutdown()`` waiters and let them run.
    2. Send SIGTERM to every descendant process, so they use the window too.
    3. Cancel ``main`` and wait for it to unwind, then every other task; at most
       half of the time left. Tasks that refuse are named, with their stacks.
    4. Run the ``@on_shutdown`` hooks, last registered first, each bounded by
       ``min(its timeout, time left)``; a failing or hung hook does not stop the next.
    5. Wait for the descendants until the deadline, SIGKILL the rest. Nothing is
       reaped here, so the app's own ``subprocess``/asyncio children keep their
       exit statuses.
    6. Shut the executor down without waiting, flush the logs, exit.

    **Deadline:** the process exits within ``grace`` seconds of the first stop
    signal, whatever the app does; a watchdog thread ends it (exit code 1) if the
    sequence itself cannot finish. The handlers for SIGTERM and SIGINT are
    restored when ``run()`` returns. A second SIGINT exits at once with code 130.
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
    )
    return execute(config, lambda: main)


def request_shutdown(exit_code: int = 0, reason: str = "requested") -> None:
    """Start the shutdown sequence from code; later calls are ignored.

    Safe to call from any thread. Raises :class:`NotRunningError` outside ``run()``.
    """
    run = _require_run("request_shutdown()")
    loop = run.loop
    if loop is None or _in_loop_thread(loop):
        run.request(exit_code, reason)
    else:
        loop.call_soon_threadsafe(run.request, exit_code, reason)


def is_shutting_down() -> bool:
    """True once the shutdown sequence has started (False when nothing runs)."""
    return _current is not None and _current.deadline is not None


async def wait_for_shutdown() -> None:
    """Return when the shutdown starts.

    Code waiting here runs before any task is cancelled (phase 1), so a server can
    stop accepting work first. **Cancellation:** like any await, it raises
    CancelledError when its task is cancelled in phase 3.
    """
    run = _require_run("wait_for_shutdown()")
    if run.stop_event is None:
        raise NotRunningError("wait_for_shutdown() must be awaited inside the app run by graceful")
    await run.stop_event.wait()


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
