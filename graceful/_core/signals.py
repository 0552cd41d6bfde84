"""SIGTERM/SIGINT handling that keeps working when a library takes the handlers over.

Servers install their own stop handlers: uvicorn's ``Server.serve()`` replaces them
with ``signal.signal`` for as long as it runs (and re-raises the signal when it
returns), hypercorn's ``serve()`` without a shutdown trigger uses
``loop.add_signal_handler``. graceful would then never hear the signal until the
library had finished its own drain, however long that took, and as PID 1 the init
would SIGKILL the app at the deadline with no hook run.

So while graceful runs, ``signal.signal`` for SIGTERM and SIGINT is intercepted:
a handler the app or a library installs is kept (graceful's own stays installed),
one WARNING names it, and it is called when the shutdown sequence starts (phase 1,
after the drain delay), so the library's own drain starts too, inside graceful's
budget, and the deadline still starts at the signal. ``request_shutdown()`` calls
it the same way, so a library drains the same whichever way the stop began. The
call returns what the library expects (the handler it replaced, as it sees it), so
a library that restores "the previous handler" when it is done (uvicorn does) hands
the signal back.

Code that bound ``signal.signal`` before graceful's was in place calls the real
one and is not seen: uvloop binds it when it is imported (``signal_signal`` in its
``stdlib.pxi``, called from its compiled ``add_signal_handler``), and so does a
module that did ``from signal import signal``. graceful imports uvloop with
:func:`dispatch` in place, so uvloop binds that (a function that calls the real
``signal.signal`` while no run is active), and under ``python -m graceful`` the app
and its libraries are imported after the interception is in place. Where neither
holds (uvloop imported before graceful, or ``graceful.run()`` called after the
app's modules were imported, or a loop of another kind), the handlers are also
looked at every ``POLL_INTERVAL`` on the loop, and taken back the same way. That
poll is the only thing that wakes an idle app, so it runs only there: 10 wake-ups a
second.

What was considered and rejected: only polling (the first version) leaves a window
of one interval after a library installs its handler in which a signal reaches only
the library: seen in tests with uvicorn stopped right after it started, the deadline
then never started. ``signal.set_wakeup_fd`` sees every signal whoever handles it,
but the loops own that fd (uvloop sets its own while it runs, asyncio's
``add_signal_handler`` replaces it). No audit event exists for ``signal.signal``.

A handler of a library that re-raises the signal once it is done (uvicorn) is
expected: the echo is logged at DEBUG and, for SIGINT, not counted as the second
Ctrl-C that forces an exit.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

log = logging.getLogger("graceful")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_real_signal = signal.signal
POLL_INTERVAL = 0.1

_active: SignalGuard | None = None
"""The guard of the run in progress (None between runs)."""
uvloop_sees_us = False
"""uvloop bound :func:`dispatch` as its ``signal.signal`` (see :func:`import_uvloop`)."""


def dispatch(signalnum: Any, handler: Any) -> Any:
    """``signal.signal`` while graceful runs (and for code that bound it then): the
    active guard's interception, or the real function when no run is active."""
    guard = _active
    if guard is None:
        return _real_signal(signalnum, handler)
    return guard._intercept(signalnum, handler)


def import_uvloop() -> Any:
    """Import uvloop so that it binds :func:`dispatch` (it binds ``signal.signal`` once,
    at import): its handlers are then seen as they are installed, without polling."""
    global uvloop_sees_us
    if "uvloop.loop" not in sys.modules:
        before = signal.signal
        signal.signal = dispatch
        try:
            import uvloop.loop  # noqa: F401
        finally:
            if signal.signal is dispatch:
                signal.signal = before
        uvloop_sees_us = True
    import uvloop

    return uvloop


Handler = Callable[[int, FrameType | None], Any]


def handler_name(handler: Any) -> str:
    """``uvicorn.server.Server.handle_exit`` for a bound method, ``module.function`` else."""
    if handler in (signal.SIG_DFL, signal.SIG_IGN, None):
        return {signal.SIG_DFL: "SIG_DFL", signal.SIG_IGN: "SIG_IGN"}.get(handler, "None")
    owner = getattr(handler, "__self__", None)
    func = getattr(handler, "__func__", handler)
    if owner is not None and not isinstance(owner, type):
        cls = type(owner)
        return f"{cls.__module__}.{cls.__qualname__}.{getattr(func, '__name__', '?')}"
    module = getattr(func, "__module__", None) or "?"
    return f"{module}.{getattr(func, '__qualname__', repr(func))}"


class SignalGuard:
    """Installs graceful's handler for SIGTERM and SIGINT, takes it back when code in
    the app replaces it, and calls the replaced handlers when the sequence starts."""

    def __init__(
        self,
        handler: Handler,
        on_foreign: Callable[[], None] = lambda: None,
        extra: tuple[int, ...] = (),
    ) -> None:
        self.handler = handler  # the one object compared against getsignal()
        # SIGTERM, SIGINT, and the signals the user made stop signals too (--stop-signal)
        self.signals = STOP_SIGNALS + tuple(signal.Signals(s) for s in extra)
        self.on_foreign = on_foreign  # a library will drain on its own: wait for it
        self.previous: dict[signal.Signals, Any] = {}
        self.foreign: dict[signal.Signals, Any] = {}
        self.echo: set[int] = set()  # signals a foreign handler may re-raise
        self.started = False  # the sequence started: adopted handlers are called at once
        self.visible: dict[signal.Signals, Any] = {}  # what the app believes is installed
        self._reported: set[str] = set()
        self._timer: Any = None
        self._wakeup_fd: int | None = None
        self.app_imported_after = False
        """The app was imported after ``install()`` (``python -m graceful``): whatever it
        binds is :func:`dispatch`."""

    def install(self) -> None:
        global _active
        for sig in self.signals:
            self.previous[sig] = _real_signal(sig, self.handler)
        _active = self
        signal.signal = dispatch

    def restore(self) -> None:
        """Put back the handlers that were there before ``install()``."""
        self._uninstall()
        for sig, handler in self.previous.items():
            _real_signal(sig, handler if handler is not None else signal.SIG_DFL)
        self.previous.clear()

    def ignore_from_now_on(self) -> None:
        """The process ends now (the summary is logged): ignore SIGTERM and SIGINT.

        CPython's finalization resets every signal that has a Python handler to
        SIG_DFL (``_PySignal_Fini``, after the atexit handlers, before the modules are
        torn down), so a repeated SIGTERM in that window (kubelet plus a preStop
        script, compose plus ``docker stop``) killed a clean stop with 143. A signal
        set to SIG_IGN is left alone there, and the interpreter's normal exit (which
        flushes what the app never closed) still runs; blocking the signals would not
        do, as the app's own threads keep them unblocked. SIG_IGN is inherited by
        children, which is why graceful uses it nowhere else: every child has been
        stopped by now. The watchdog still bounds the exit.
        """
        self._uninstall()
        for sig in self.signals:
            _real_signal(sig, signal.SIG_IGN)

    def _uninstall(self) -> None:
        global _active
        self.stop_watching()
        if _active is self:
            _active = None
        if signal.signal is dispatch:
            signal.signal = _real_signal

    def _intercept(self, signalnum: Any, handler: Any) -> Any:
        """``signal.signal`` while graceful runs: a SIGTERM/SIGINT handler installed by
        the app or a library is kept (and called at phase 1) instead of replacing
        graceful's, with no window in which a signal could reach only it. It returns
        what a library expects (the handler it replaces, as it sees it), so a library
        that restores "the previous handler" when it is done hands the signal back."""
        if (
            signalnum not in self.previous
            or threading.current_thread() is not threading.main_thread()
        ):
            return _real_signal(signalnum, handler)
        sig = signal.Signals(signalnum)
        if not (callable(handler) or handler in (signal.SIG_DFL, signal.SIG_IGN)):
            return _real_signal(signalnum, handler)  # let signal.signal raise its TypeError
        before = self.visible.get(sig, self.handler)
        self.visible[sig] = handler
        if handler is self.handler or not callable(handler):
            # graceful's own handler given back (the library is done), or SIG_DFL/SIG_IGN:
            # nothing to call at the stop any more; graceful keeps the signal.
            self.foreign.pop(sig, None)
        else:
            self._adopt(sig, handler)
        return before

    def watch(self, loop: Any) -> None:
        """Check the handlers now, and every ``POLL_INTERVAL`` on ``loop`` unless every
        way to install one goes through :func:`dispatch` (see the top of the module)."""
        self.check()
        self._wake_on_signals(loop)
        if self.app_imported_after and self._loop_is_seen(loop):
            return
        self._timer = loop.call_later(POLL_INTERVAL, self._tick, loop)

    @staticmethod
    def _loop_is_seen(loop: Any) -> bool:
        import asyncio

        if isinstance(loop, asyncio.BaseEventLoop):  # looks signal.signal up at each call
            return True
        return type(loop).__module__.startswith("uvloop") and uvloop_sees_us

    def _wake_on_signals(self, loop: Any) -> None:
        """Make every signal wake asyncio's loop, as its ``add_signal_handler`` does.

        CPython's C handler only notes the signal; the Python handler runs when the
        main thread next runs bytecode. An idle loop sleeps in ``epoll_wait`` with no
        timeout, so a signal that lands just before the loop enters it (between its
        last check and the system call: no EINTR then), or that the kernel hands to
        another thread of the app (any thread not blocking it may get it), woke
        nothing, and the stop began only when the init SIGKILLed the app at the end
        of the grace period. A wake-up fd is written by the C handler itself, in
        whatever thread and at whatever moment. uvloop sets its own while it runs;
        one set by someone else is left alone.
        """
        csock = getattr(loop, "_csock", None)
        if csock is None or threading.current_thread() is not threading.main_thread():
            return
        fd = csock.fileno()
        before = signal.set_wakeup_fd(fd, warn_on_full_buffer=False)
        if before in (-1, fd):
            self._wakeup_fd = fd
        else:
            signal.set_wakeup_fd(before)

    def stop_watching(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._wakeup_fd is not None:
            fd, self._wakeup_fd = self._wakeup_fd, None
            current = signal.set_wakeup_fd(-1)
            if current != fd:  # replaced since: not ours to take away
                signal.set_wakeup_fd(current)

    def _tick(self, loop: Any) -> None:
        self.check()
        self._timer = loop.call_later(POLL_INTERVAL, self._tick, loop)

    def check(self) -> None:
        """Take back any stop handler that is not ours (main thread only)."""
        for sig in self.signals:
            current = signal.getsignal(sig)
            if current is self.handler or sig not in self.previous:
                continue
            _real_signal(sig, self.handler)
            self._adopt(sig, current)

    def _adopt(self, sig: signal.Signals, current: Any) -> None:
        name = handler_name(current)
        callable_ = callable(current)
        if callable_:
            self.foreign[sig] = current
            self.on_foreign()
        if name not in self._reported:
            self._reported.add(name)
            # One line per library, though it may take both signals one after the other.
            which = sig.name if sig not in STOP_SIGNALS else "SIGTERM/SIGINT"
            then = (
                "calls it when the sequence starts, so the library drains inside graceful's"
                " deadline"
                if callable_
                else "ignores it"
            )
            log.warning(
                "%s took graceful's %s handler: graceful keeps its own and %s."
                " To avoid this, use graceful.integrations",
                name,
                which,
                then,
            )
        if self.started and callable_:
            self._call(sig, current)

    def call_foreign(self) -> None:
        """Phase 1: tell the libraries that took the handlers to stop, as a SIGTERM would.

        The SIGTERM handler is preferred (one call is enough to start a library's
        drain); a library that handles only SIGINT gets SIGINT.
        """
        self.started = True
        for sig in self.signals:
            handler = self.foreign.get(sig)
            if handler is not None:
                self._call(sig, handler)
                return

    def _call(self, sig: signal.Signals, handler: Any) -> None:
        self.echo.add(int(sig))
        try:
            handler(int(sig), None)
        except BaseException as exc:  # KeyboardInterrupt from default_int_handler, etc.
            log.warning(
                "%s raised %s when called for %s; ignored",
                handler_name(handler),
                type(exc).__name__,
                sig.name,
            )

    def is_echo(self, signum: int) -> bool:
        """True (once) for a signal a foreign handler we called may re-raise."""
        if signum in self.echo:
            self.echo.discard(signum)
            return True
        return False
