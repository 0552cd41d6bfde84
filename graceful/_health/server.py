"""The health server: ``GET /livez`` and ``GET /readyz`` over HTTP/1.1, on a thread of
its own.

Why a thread, not the app's loop: ``/livez`` must answer while the loop is blocked
(that is when it matters), and a probe must cost the loop nothing but the readiness
checks it asks for. The thread runs one selector loop over non-blocking sockets, not a
thread per connection, so idle or abusive connections cost a slot in a table, never a
thread. The port is bound before the app is imported, so a port in use is a usage
error at start-up, and probes are answered (503 on ``/readyz``) from then until the
process exits: the server is closed at the very end of the shutdown.

Why h11 rather than a hand-written parser: request-line and header edge cases
(obs-fold, bare CR, conflicting lengths) are where hand-written servers go wrong, and
h11 enforces a bound on how much of an incomplete request it buffers.

One request per connection: every response says ``Connection: close``. Probes open a
connection per probe anyway, and it bounds a connection's life to reading one request
head (``HEADER_TIMEOUT``), the readiness checks (their own timeouts) and a short
lingering close. At most ``MAX_CONNECTIONS`` are open; a new one evicts one already
answered, else the oldest that has not sent a whole request, never one being answered,
so a flood of idle connections cannot lock the kubelet out.

Readiness checks run on the app's loop (``checks``), concurrently, each bounded by
its timeout. One run at a time: requests arriving meanwhile share its results, so a
flood of ``/readyz`` cannot pile work onto the loop; if the loop does not finish the
run in time (blocked), the answer is 503 without scheduling another.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import selectors
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

import h11

from .._config import Config, source_example
from .._errors import UsageError
from .checks import CheckRun
from .gil import Nudger
from .lag import LoopLag, start_daemon
from .readiness import state as readiness

if TYPE_CHECKING:
    from .._core.deadline import Spare

log = logging.getLogger("graceful")

MAX_CONNECTIONS = 64
MAX_REQUEST_HEAD = 8192
"""Bytes of request line and headers; a larger head is answered 431."""
HEADER_TIMEOUT = 3.0
"""From accept to a complete request head; probes send theirs in one packet."""
LINGER_TIMEOUT = 1.0
"""After the response, how long to wait for the client to close first (see ``_respond``)."""
BACKLOG = 128
ACCEPT_PAUSE = 0.1
"""Out of file descriptors: stop accepting this long instead of spinning."""
ACCEPT_LOG_EVERY = 10.0
"""...and say so at most once in this many seconds, with the count."""

READING, CHECKING, LINGERING = "reading", "checking", "lingering"
PATHS = (b"/livez", b"/readyz")
REASONS = {
    200: b"OK",
    400: b"Bad Request",
    404: b"Not Found",
    405: b"Method Not Allowed",
    408: b"Request Timeout",
    414: b"URI Too Long",
    431: b"Request Header Fields Too Large",
    503: b"Service Unavailable",
}
Body = dict[str, Any]


def bind(config: Config) -> socket.socket:
    """A listening, non-blocking socket for the health server; :class:`UsageError` if
    the address or port cannot be used, naming the option to change."""
    host, port = config.health_host, config.health_port or 0
    host_opt, port_opt = config.spelling("health_host"), config.spelling("health_port")
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host  # [::1]
    try:
        infos = socket.getaddrinfo(bare, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise UsageError(
            f"{host_opt} {host!r} is not an address to listen on ({exc.strerror});"
            f" use an address of this machine, e.g. {source_example(host_opt, '0.0.0.0')}"
        ) from None
    family, kind, proto, _name, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        # Lets a restarted app bind while the last one's connections sit in TIME_WAIT;
        # on Linux it does not let two sockets listen on one port.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6 and bare == "::":
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # IPv4 too
        sock.bind(address)
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise UsageError(_bind_problem(exc, host, port, host_opt, port_opt)) from None
    return sock


def _bind_problem(exc: OSError, host: str, port: int, host_opt: str, port_opt: str) -> str:
    if exc.errno == errno.EADDRINUSE:
        return (
            f"{port_opt} {port}: the port is already in use on {host};"
            " stop what listens there or choose another port"
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return (
            f"{host_opt} {host}: not an address of this machine;"
            f" use one of its own, or {source_example(host_opt, '0.0.0.0')} for all"
        )
    if exc.errno == errno.EACCES:
        return (
            f"{port_opt} {port}: permission denied (ports below 1024 need root or"
            " CAP_NET_BIND_SERVICE); use a port above 1023"
        )
    return f"cannot listen on {host} port {port} ({exc.strerror}); check {host_opt} and {port_opt}"


class HealthServer:
    """``/livez`` and ``/readyz`` on a daemon thread; see the module docstring."""

    def __init__(self, listener: socket.socket, lag: LoopLag) -> None:
        self.lag = lag
        self.metrics = False  # --metrics on: GET /metrics
        self.address: tuple[str, int] = listener.getsockname()[:2]
        self._listener = listener
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._closing = False
        self._handling = False  # between select() and the next one (see _gil)
        self._run: CheckRun | None = None
        self._failing: set[str] = set()  # checks failing at their last run (see CheckRun)
        self._accept_paused_until: float | None = None
        self._accept_logged_at = -ACCEPT_LOG_EVERY  # the first failure is logged at once
        self._accept_failures = 0
        self._starved = False  # an accept() found the process out of descriptors
        self._accept_stopped = False  # for good: the stop took the spare descriptor
        self.spare: Spare | None = None  # the stop's descriptor (set by the runtime)
        self._sel = selectors.DefaultSelector()
        self._nudger: Nudger | None = None  # started with the server thread
        self._conns: dict[int, _Conn] = {}  # by fd, oldest first
        self._thread = threading.Thread(target=self._serve, name="graceful-health", daemon=True)

    @classmethod
    def start(cls, config: Config) -> HealthServer:
        """Bind (see :func:`bind`) and start serving; the loop is attached later."""
        lag = LoopLag(config.liveness_max_lag, config.spelling("liveness_max_lag"))
        server = cls(bind(config), lag)
        server.metrics = config.metrics
        server._nudger = Nudger(server._sel.fileno(), lambda: server._handling)
        start_daemon(server._thread)
        host, port = server.address
        shown = f"[{host}]" if ":" in host else host
        paths = "/livez, /readyz, /metrics" if config.metrics else "/livez, /readyz"
        log.info("health server listening on http://%s:%d (%s)", shown, port, paths)
        return server

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """The app's loop runs: start its heartbeat, and run readiness checks on it.
        Call on the loop's thread."""
        self._loop = loop
        self.lag.attach(loop)

    def close(self, timeout: float = 0.1) -> None:
        """Stop serving: connections are closed, the port is released. Waits at most
        ``timeout`` for the server thread (it is a daemon: it never holds the exit)."""
        self.lag.close()
        if self._closing:
            return
        self._closing = True
        self._wake()
        self._thread.join(timeout)

    # -- the server thread --------------------------------------------------------------

    def _serve(self) -> None:
        sel = self._sel
        sel.register(self._listener, selectors.EVENT_READ)
        sel.register(self._wake_r, selectors.EVENT_READ)
        try:
            while not self._closing:
                events = sel.select(self._timeout())
                self._handling = True
                for key, _events in events:
                    if self._closing:
                        break
                    try:
                        if key.fileobj is self._listener:
                            self._accept()
                        elif key.fileobj is self._wake_r:
                            self._drain_wake()
                        else:
                            self._readable(key.data)
                    except Exception:  # a bug of ours: keep serving the other connections
                        log.exception("health server: error while handling a connection")
                        if isinstance(key.data, _Conn):
                            self._drop(key.data)
                self._tick()
                self._handling = False
        except Exception:
            log.exception("health server stopped by an error; /livez and /readyz are down")
        finally:
            for conn in list(self._conns.values()):
                self._drop(conn)
            if self._nudger is not None:  # it polls the selector: stop it before closing that
                self._wake()  # (unread: keeps the selector readable, which wakes the nudger)
                self._nudger.stop()
            sel.close()
            for sock in (self._listener, self._wake_r, self._wake_w):
                sock.close()

    def _timeout(self) -> float | None:
        ends = [c.deadline for c in self._conns.values()]
        if self._accept_paused_until is not None:
            ends.append(self._accept_paused_until)
        if not ends:
            return None
        return max(0.0, min(ends) - time.monotonic())

    def _accept(self) -> None:
        spare = self.spare
        if not self._starved or spare is None:
            self._accept_one()
            return
        # The process ran out of descriptors: the slot the stop frees for itself must
        # not go to a probe (see graceful/_core/deadline.Spare). Once it is freed, this
        # server accepts nothing more; readiness fails from then on anyway.
        with spare.lock:
            if not spare.freed:
                self._accept_one()
                return
        self._accept_stopped = True
        if self._accept_paused_until is None:  # else the listener is unregistered already
            self._sel.unregister(self._listener)

    def _accept_one(self) -> None:
        # One connection per wake-up: more waiting keep the listener readable, and not
        # asking again saves a system call (an EAGAIN) per probe, and with it one more
        # turn of waiting for the GIL (see _gil).
        try:
            sock, _peer = self._listener.accept()
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                self._starved = True
                # Free a descriptor for the next probe by dropping a connection that has
                # not asked anything yet, pause, and say so at most every ACCEPT_LOG_EVERY.
                victim = self._evictable()
                if victim is not None:
                    self._drop(victim)
                self._accept_failures += 1
                now = time.monotonic()
                if now >= self._accept_logged_at + ACCEPT_LOG_EVERY:
                    log.warning(
                        "health server: cannot accept (%s; %d time(s) since the last"
                        " line); pausing %g s each time, dropping idle connections",
                        exc.strerror,
                        self._accept_failures,
                        ACCEPT_PAUSE,
                    )
                    self._accept_logged_at, self._accept_failures = now, 0
                self._sel.unregister(self._listener)
                self._accept_paused_until = now + ACCEPT_PAUSE
            return  # ECONNABORTED and the like: that client is gone
        sock.setblocking(False)
        if len(self._conns) >= MAX_CONNECTIONS:
            victim = self._evictable()
            if victim is None:  # every slot is answering a request: refuse this one
                sock.close()
                return
            self._drop(victim)
        conn = _Conn(sock, time.monotonic() + HEADER_TIMEOUT)
        self._conns[sock.fileno()] = conn
        self._sel.register(sock, selectors.EVENT_READ, conn)
        # The request usually arrives with the connection: read it now, which saves
        # a round through select (and a wait for the GIL when the loop is busy).
        self._readable(conn)

    def _evictable(self) -> _Conn | None:
        """The connection to drop for a new one: one already answered (lingering),
        else the oldest that has not sent a whole request; never one being answered
        (a kubelet waiting for its readiness checks)."""
        reading = None
        for conn in self._conns.values():  # oldest first
            if conn.state == LINGERING:
                return conn
            if conn.state == READING and reading is None:
                reading = conn
        return reading

    def _readable(self, conn: _Conn) -> None:
        try:
            data = conn.sock.recv(4096)
        except BlockingIOError:
            return
        except OSError:  # reset by the client
            self._drop(conn)
            return
        if conn.state == LINGERING:
            if not data:
                self._drop(conn)
            return  # the rest of what it sent: discarded
        if conn.state == CHECKING:
            if not data:  # half-closed: it may still read the answer
                self._sel.unregister(conn.sock)
                conn.registered = False
            return
        # h11 bounds only an incomplete head; one completed by a later recv() could be
        # larger. So it is fed at most MAX_REQUEST_HEAD bytes in all (a body is not read).
        budget = MAX_REQUEST_HEAD - conn.received
        conn.received += len(data)
        conn.parser.receive_data(data[:budget])  # (b"" for an EOF stays b"")
        try:
            event = conn.parser.next_event()
        except h11.RemoteProtocolError as exc:
            status = exc.error_status_hint if exc.error_status_hint in REASONS else 400
            self._respond(conn, status, {"error": _ERRORS.get(status, "malformed request")})
            return
        if event is h11.NEED_DATA:
            if conn.received >= MAX_REQUEST_HEAD:
                self._respond(conn, 431, {"error": _ERRORS[431]})
            return
        if isinstance(event, h11.Request):
            self._request(conn, event)
        else:  # ConnectionClosed before a request
            self._drop(conn)

    def _request(self, conn: _Conn, request: h11.Request) -> None:
        conn.head = request.method == b"HEAD"
        conn.read_all = _read_all(conn)
        path, _sep, query = request.target.partition(b"?")
        conn.verbose = b"verbose" in (part.split(b"=", 1)[0] for part in query.split(b"&"))
        if path == b"/metrics" and self.metrics and request.method in (b"GET", b"HEAD"):
            from .metrics import CONTENT_TYPE, exposition

            self._respond(conn, 200, {}, raw=(exposition(self.lag), CONTENT_TYPE))
        elif path not in PATHS:
            self._respond(conn, 404, {"error": _ERRORS[404]})
        elif request.method not in (b"GET", b"HEAD"):
            self._respond(conn, 405, {"error": _ERRORS[405]}, [("Allow", "GET, HEAD")])
        elif path == b"/livez":
            self._respond(conn, *self._livez())
        else:
            answer = self._readyz()
            if answer is not None:
                self._respond(conn, *_brief(answer, conn.verbose))
            else:
                self._wait_for_checks(conn)

    def _tick(self) -> None:
        now = time.monotonic()
        paused = self._accept_paused_until
        if paused is not None and now >= paused:
            self._accept_paused_until = None
            if not (self._closing or self._accept_stopped):
                self._sel.register(self._listener, selectors.EVENT_READ)
        for conn in list(self._conns.values()):
            if conn.state == CHECKING:
                run = conn.run
                assert run is not None
                if run.done:
                    self._respond(conn, *_brief(self._checked(run), conn.verbose))
                elif now >= conn.deadline:
                    self._respond(conn, *_brief(_checks_late(run), conn.verbose))
            elif now >= conn.deadline:
                if conn.state == READING:
                    self._respond(conn, 408, {"error": _ERRORS[408]})
                else:
                    self._drop(conn)

    def _respond(
        self,
        conn: _Conn,
        status: int,
        body: Body,
        headers: list[tuple[str, str]] | None = None,
        raw: tuple[bytes, str] | None = None,
    ) -> None:
        payload, content_type = raw or ((json.dumps(body) + "\n").encode(), "application/json")
        all_headers = [
            ("Content-Type", content_type),
            ("Content-Length", str(len(payload))),
            ("Cache-Control", "no-store"),
            ("Connection", "close"),
            *(headers or []),
        ]
        try:
            parser = conn.parser
            data = (
                parser.send(
                    h11.Response(status_code=status, reason=REASONS[status], headers=all_headers)
                )
                or b""
            )
            if not conn.head:
                data += parser.send(h11.Data(data=payload)) or b""
            data += parser.send(h11.EndOfMessage()) or b""
            # A response is under 1 KiB and goes into an empty send buffer (4 KiB at
            # least), so one send() takes it whole; if not, the client is dropped.
            if conn.sock.send(data) != len(data):
                raise BlockingIOError
            if conn.read_all:  # the usual probe: close now, one syscall (see _read_all)
                self._drop(conn)
                return
            # Lingering close: closing a socket with unread input makes Linux send a
            # RST, which can destroy the response before the client reads it. So send
            # FIN, then read and discard until the client closes (or LINGER_TIMEOUT).
            conn.sock.shutdown(socket.SHUT_WR)
        except (OSError, h11.LocalProtocolError):
            self._drop(conn)
            return
        conn.state, conn.run = LINGERING, None
        conn.deadline = time.monotonic() + LINGER_TIMEOUT
        if not conn.registered:
            self._drop(conn)

    def _drop(self, conn: _Conn) -> None:
        fd = conn.sock.fileno()
        if fd < 0:
            return
        if conn.registered:
            self._sel.unregister(conn.sock)
        self._conns.pop(fd, None)
        conn.sock.close()

    def _wake(self) -> None:
        """Wake the server thread (from any thread)."""
        try:
            self._wake_w.send(b"\0")
        except OSError:  # buffer full (already awake) or closed
            pass

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(512):
                pass
        except OSError:
            pass

    # -- what the answers say ----------------------------------------------------------

    def _livez(self) -> tuple[int, Body]:
        lag = self.lag.lag()
        if lag is None:
            return 200, {"status": "alive", "loop_lag_s": None}
        if lag > self.lag.max_lag:
            return 503, {
                "status": "event loop blocked",
                "loop_lag_s": round(lag, 3),
                "max_lag_s": self.lag.max_lag,
            }
        return 200, {"status": "alive", "loop_lag_s": round(lag, 3)}

    def _reasons(self) -> list[str]:
        reasons = readiness.reasons()
        lag = self.lag.lag()
        if lag is not None and lag > self.lag.max_lag and not readiness.stopping:
            reasons.append(f"event loop blocked for {lag:.1f} s")
        return reasons

    def _not_ready(self, reasons: list[str], checks: dict[str, str] | None = None) -> Body:
        body: Body = {
            "status": "stopping" if readiness.stopping else "not ready",
            "reasons": reasons,
        }
        if checks:
            body["checks"] = checks
        return body

    def _readyz(self) -> tuple[int, Body] | None:
        """The answer, or None when the readiness checks have to run first."""
        reasons = self._reasons()
        if reasons:
            return 503, self._not_ready(reasons)
        if not readiness.checks:
            return 200, {"status": "ready"}
        return None

    def _wait_for_checks(self, conn: _Conn) -> None:
        run = self._run
        if run is not None and not run.done and time.monotonic() >= run.late_at:
            # The last run is overdue: the loop is blocked. Do not queue another behind it.
            self._respond(conn, *_brief(_checks_late(run), conn.verbose))
            return
        if run is None or run.done:
            run = self._start_checks()
            if run is None:
                answer = (503, self._not_ready(["the event loop is not running"]))
                self._respond(conn, *_brief(answer, conn.verbose))
                return
        conn.state, conn.run, conn.deadline = CHECKING, run, run.late_at

    def _start_checks(self) -> CheckRun | None:
        loop = self._loop
        checks = list(readiness.checks.values())
        if loop is None or loop.is_closed():
            return None
        run = CheckRun(checks, self._wake, self._failing)
        try:
            loop.call_soon_threadsafe(run.start, loop)
        except RuntimeError:  # the loop closed meanwhile
            return None
        self._run = run
        return run

    def _checked(self, run: CheckRun) -> tuple[int, Body]:
        results = run.results
        reasons = self._reasons()  # a stop may have begun while they ran
        reasons += [
            f"check {name!r} {result}" for name, result in results.items() if result != "ok"
        ]
        if reasons:
            return 503, self._not_ready(reasons, results)
        return 200, {"status": "ready", "checks": results}


def _read_all(conn: _Conn) -> bool:
    """Whether the request was read to its end with nothing after it, so that closing
    the socket right after the response sends a FIN, not a RST.

    Worth the check: every syscall of the server thread lets go of the GIL, and on a
    loop busy with Python code taking it back can wait for many of the loop's slices
    (the loop re-takes the GIL at each iteration and the waiter, woken each time, never
    times out to claim it). A lingering close costs three more: shutdown, a wake-up
    for the client's FIN, the read of it.
    """
    try:
        event = conn.parser.next_event()
    except h11.RemoteProtocolError:
        return False
    unread, _closed = conn.parser.trailing_data
    return isinstance(event, h11.EndOfMessage) and not unread and conn.received <= MAX_REQUEST_HEAD


def _brief(answer: tuple[int, Body], verbose: bool) -> tuple[int, Body]:
    """``/readyz`` shows only its status unless asked ``?verbose`` (the Kubernetes API
    server's convention): check names and exception texts are for the operator, not
    for anyone who reaches the port. ``python -m graceful probe`` asks verbosely."""
    status, body = answer
    return answer if verbose else (status, {"status": body["status"]})


def _checks_late(run: CheckRun) -> tuple[int, Body]:
    why = f"readiness checks not done after {run.wait:g} s: the event loop is blocked or busy"
    return 503, {"status": "not ready", "reasons": [why]}


_ERRORS = {
    400: "malformed request",
    404: "not found; the paths are /livez and /readyz",
    405: "method not allowed; use GET or HEAD",
    408: f"request not received within {HEADER_TIMEOUT:g} s",
    414: "request line too long",
    431: f"request head larger than {MAX_REQUEST_HEAD} bytes",
}


class _Conn:
    __slots__ = (
        "sock",
        "parser",
        "state",
        "deadline",
        "head",
        "run",
        "registered",
        "received",
        "read_all",
        "verbose",
    )

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock = sock
        self.parser = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_REQUEST_HEAD)
        self.state = READING
        self.deadline = deadline
        self.head = False
        self.run: CheckRun | None = None
        self.registered = True
        self.received = 0
        self.read_all = False
        self.verbose = False
