"""The output of supervised processes, line by line into logging, off the event loop.

Why a thread: a child that writes a lot can cost the loop hundreds of ms per
burst when each line is logged by a callback on the loop thread (a prototype
logging 100,000 lines delayed a 10 ms timer by 377 ms). The cost is per line,
in the logging handlers (about 8-10 us a line with a plain file handler), so
reading bigger chunks on the loop does not help. One daemon thread reads every
pipe through epoll, in chunks of 64 KiB, cuts them into whole lines and logs
them; the loop thread only waits for the GIL, for at most the interpreter's
switch interval (5 ms). A child that writes faster than its lines can be logged
blocks on its full pipe: nothing is dropped.

Lines are never split: the end of a chunk without a newline waits for the next
chunk. Only a line longer than ``MAX_LINE`` is cut (at that length, give or take a
chunk), so that a child that never writes a newline cannot take all memory. stdout and stderr
are separate pipes, so a line of one can never be cut into by the other, and each
line's level says which it came from unless the line names its own.
"""

from __future__ import annotations

import logging
import os
import re
import select
import threading
from collections import deque
from collections.abc import Callable

READ_SIZE = 65536
MAX_LINE = 1 << 20
TAIL_LINES = 10
"""How many of a process's last lines are kept, for the message when it fails."""


class Stream:
    """One pipe from a managed process (its read end), logged line by line."""

    __slots__ = ("fd", "label", "logger", "level", "tail", "on_eof", "_partial", "_last")

    def __init__(
        self,
        fd: int,
        label: str,
        logger: logging.Logger,
        level: int,
        tail: deque[str],
        on_eof: Callable[[], None],
    ) -> None:
        self.fd, self.label, self.logger, self.level = fd, label, logger, level
        self.tail = tail
        self.on_eof = on_eof
        self._partial = bytearray()
        self._last = level  # the level of the line before (for continuation lines)

    def feed(self, data: bytes) -> None:
        """Log the whole lines in ``data``; keep the unfinished end for the next chunk."""
        end = data.rfind(b"\n")
        if end < 0:
            self._partial += data
            if len(self._partial) >= MAX_LINE:
                self._emit(bytes(self._partial))
                self._partial.clear()
            return
        if self._partial:
            complete = bytes(self._partial) + data[:end]
            self._partial.clear()
        else:
            complete = data[:end]
        self._partial += data[end + 1 :]
        self._emit(complete)

    def finish(self) -> None:
        if self._partial:
            self._emit(bytes(self._partial))
            self._partial.clear()

    def _emit(self, complete: bytes) -> None:
        lines = complete.decode(errors="replace").split("\n")
        self.tail.extend(line.rstrip("\r") for line in lines[-TAIL_LINES:])
        logger = self.logger
        # makeRecord + handle: what logger.info does, minus the caller lookup (which
        # walks the stack for every line and would name this module anyway).
        make, handle, name, label = logger.makeRecord, logger.handle, logger.name, self.label
        stream = "stderr" if self.level >= logging.WARNING else "stdout"
        for line in lines:
            level, text, fields = self._level_of(line.rstrip("\r"))
            if logger.isEnabledFor(level):
                extra = {"fields": {"source": label, "stream": stream, **fields}}
                handle(make(name, level, __file__, 0, "[%s] %s", (label, text), None, None, extra))

    def _level_of(self, line: str) -> tuple[int, str, dict[str, object]]:
        """The level to log ``line`` at, and its text: a graceful app's line at its own
        level without its timestamp; a line that names its level (``ERROR``, ``WARN``
        ...) at that level; a traceback's or an indented continuation line at the level
        of the line before; any other at the stream's (stdout INFO, stderr WARNING). A
        JSON line with a ``level`` and a ``message`` (graceful's ``--log-format json``,
        and most JSON loggers) at its level, its other fields kept."""
        found = _GRACEFUL_LINE.match(line)
        if found is not None:
            self._last = _LEVELS[found.group(1)]
            return self._last, found.group(2), {}
        if line.startswith("{"):
            parsed = _json_record(line)
            if parsed is not None:
                self._last, text, fields = parsed
                return self._last, text, fields
        if line[:1].isspace() or line.startswith("Traceback "):
            return self._last, line, {}
        named = _NAMED_LEVEL.search(line, 0, 48)
        self._last = _LEVELS[named.group(1)] if named is not None else self.level
        return self._last, line, {}


def _json_record(line: str) -> tuple[int, str, dict[str, object]] | None:
    import json

    try:
        record = json.loads(line)
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    level = _LEVELS.get(str(record.get("level", "")).upper())
    message = record.get("message", record.get("msg"))
    if level is None or not isinstance(message, str):
        return None
    kept = {k: v for k, v in record.items() if k not in _OWN_KEYS}
    if "pid" in record:
        kept["source_pid"] = record["pid"]
    return level, message, kept


_OWN_KEYS = {"time", "level", "logger", "message", "msg", "pid", "process"}


_GRACEFUL_LINE = re.compile(
    r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} graceful(?: \S+\[\d+\])?"
    r" (DEBUG|INFO|WARNING|ERROR|CRITICAL): (.*)\Z",
    re.S,
)
_NAMED_LEVEL = re.compile(r"\b(DEBUG|INFO|NOTICE|WARNING|WARN|ERROR|CRITICAL|FATAL|PANIC)\b")
_LEVELS = {
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "NOTICE": logging.INFO,
    "WARNING": logging.WARNING,
    "WARN": logging.WARNING,
    "ERROR": logging.ERROR,
    "CRITICAL": logging.CRITICAL,
    "FATAL": logging.CRITICAL,
    "PANIC": logging.CRITICAL,
}


class Pump:
    """The thread that reads every managed process's pipes. Started when a pipe is
    added, it ends when the last one is closed (so nothing is left running after the
    processes, also in users' in-process tests)."""

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._streams: dict[int, Stream] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def add(self, stream: Stream) -> None:
        """Start reading ``stream``; its fd is closed by the pump at end of file."""
        with self._lock:
            self._streams[stream.fd] = stream
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="graceful-output", daemon=True
                )
                self._thread.start()
        # epoll_ctl is safe while the thread waits in epoll_wait: it sees the fd at once.
        self._epoll.register(stream.fd, select.EPOLLIN)

    def _run(self) -> None:
        while True:
            try:
                events = self._epoll.poll()
            except InterruptedError:  # pragma: no cover (PEP 475 retries; kept for safety)
                continue
            for fd, _mask in events:
                stream = self._streams.get(fd)
                if stream is not None:
                    self._read(stream)
            with self._lock:
                if not self._streams:  # nothing left to read: end, add() starts another
                    self._thread = None
                    return

    def _read(self, stream: Stream) -> None:
        try:
            data = os.read(stream.fd, READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        try:
            if data:
                stream.feed(data)
                return
            stream.finish()
        except Exception:  # a failing handler must not stop the output of every process
            logging.getLogger("graceful").exception(
                "output of %s could not be logged", stream.label
            )
            if data:
                return
        self._epoll.unregister(stream.fd)
        with self._lock:
            del self._streams[stream.fd]
        os.close(stream.fd)
        stream.on_eof()


_pump: Pump | None = None
_pump_lock = threading.Lock()


def pump() -> Pump:
    global _pump
    with _pump_lock:
        if _pump is None:
            _pump = Pump()
        return _pump
