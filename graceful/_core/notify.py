"""Telling the service manager how the app is doing: systemd's notify protocol.

When ``NOTIFY_SOCKET`` is set (systemd with ``Type=notify``, or a graceful
Supervisor that started this app with ``ready="notify"``, as ``--workers`` does),
graceful sends ``READY=1`` the first time the app is ready (what ``/readyz``
would answer: ``main`` running, the servers of the integrations listening,
``set_ready()`` in manual mode, and every ``@readiness_check`` passing),
``STOPPING=1`` at the first stop signal, ``STATUS=`` with each phase of the stop,
and, when ``WATCHDOG_USEC`` asks for it, ``WATCHDOG=1`` from the loop twice per
period. Nothing is sent, and nothing is loaded, when the variable is not set.

Each message is one datagram, sent without blocking: a manager that does not
read its socket must not hold the app (a full socket loses the message). Sending
is safe from any thread and from the signal handler (one ``sendto``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading

from .._health.readiness import state as readiness

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .._health.checks import CheckRun

log = logging.getLogger("graceful")

WATCHDOG_SHARE = 0.5
"""Pings come twice per ``WATCHDOG_USEC``, as sd_watchdog_enabled(3) advises."""
RETRY_CHECKS = 1.0
"""While the readiness checks fail before the first READY=1: how often they run again."""


def watchdog_interval() -> float | None:
    """Seconds between pings, if the manager watches this process (``WATCHDOG_USEC``,
    and ``WATCHDOG_PID`` unset or this process's pid)."""
    try:
        usec = int(os.environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    pid = os.environ.get("WATCHDOG_PID", "")
    if usec <= 0 or (pid and pid != str(os.getpid())):
        return None
    return usec / 1e6 * WATCHDOG_SHARE


class Notifier:
    """Sends the app's state to ``NOTIFY_SOCKET``."""

    def __init__(self, address: str) -> None:
        self.address = "\0" + address[1:] if address.startswith("@") else address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.sock.setblocking(False)
        self.ready_sent = False
        self.loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._checking = False
        self._failing: set[str] = set()

    @classmethod
    def from_environment(cls) -> Notifier | None:
        address = os.environ.get("NOTIFY_SOCKET", "")
        if not address.startswith(("@", "/")):
            return None
        try:
            return cls(address)
        except OSError as exc:
            log.warning("cannot tell the service manager anything (NOTIFY_SOCKET): %s", exc)
            return None

    def send(self, message: str) -> bool:
        try:
            self.sock.sendto(message.encode(), self.address)
        except OSError:
            return False
        return True

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """The app's loop runs: readiness checks can run on it, and the watchdog's
        pings (``WATCHDOG=1``) start when the manager asks for them."""
        self.loop = loop
        self.readiness_changed()
        interval = watchdog_interval()
        if interval is not None:
            self._ping(loop, interval)

    def _ping(self, loop: asyncio.AbstractEventLoop, interval: float) -> None:
        """``WATCHDOG=1`` from the loop itself: a loop that is blocked stops pinging,
        and the manager restarts the service (what ``/livez`` lets the kubelet do)."""
        self.send("WATCHDOG=1")
        loop.call_later(interval, self._ping, loop, interval)

    def readiness_changed(self) -> None:
        """Readiness may have turned on (any thread): send READY=1 if it has, once."""
        if self.ready_sent or readiness.stopping or readiness.reasons():
            return
        if not readiness.checks:
            self._ready()
            return
        loop = self.loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(self._run_checks)
        except RuntimeError:  # the loop closed meanwhile
            pass

    def _run_checks(self) -> None:
        if self._checking or self.ready_sent or readiness.stopping:
            return
        from .._health.checks import CheckRun

        self._checking = True
        run = CheckRun(list(readiness.checks.values()), lambda: self._checked(run), self._failing)
        assert self.loop is not None
        run.start(self.loop)

    def _checked(self, run: CheckRun) -> None:
        self._checking = False
        if all(result == "ok" for result in run.results.values()):
            if not readiness.reasons():
                self._ready()
        elif self.loop is not None and not readiness.stopping:
            self.loop.call_later(RETRY_CHECKS, self.readiness_changed)

    def _ready(self) -> None:
        with self._lock:
            if self.ready_sent:
                return
            self.ready_sent = True
        if self.send("READY=1\nSTATUS=ready"):
            log.debug("told the service manager: READY=1")

    def stopping(self) -> None:
        """The stop began (called from the signal handler too): one datagram."""
        self.send("STOPPING=1\nSTATUS=stopping")

    def status(self, text: str) -> None:
        self.send(f"STATUS={text}")

    def close(self) -> None:
        self.sock.close()
