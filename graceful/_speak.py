"""The one way graceful writes to stderr, before and after logging is set up.

Every line graceful writes has one shape::

    2026-12-06 10:00:00,123 graceful INFO: SIGTERM received: shutting down within 10 s

or, with ``--log-format json``, one JSON object (see :func:`json_line`); and, in a
process a graceful supervisor started (``--workers`` or
``Supervisor.start()``, which set ``GRACEFUL_PROCESS_NAME``), the program's name
and the pid after the word graceful: ``graceful worker-0[4242] INFO: ...``, so a
line says which process wrote it. The logging handler graceful installs uses
:func:`log_format`; code that cannot use logging (before it is set up, in the init,
in a signal handler, from a stuck thread that may hold logging's locks) uses
:func:`leveled` and :func:`write`, which take no Python-level lock. Command-line
usage errors keep the usual ``graceful: error: ...`` form of command-line tools.

Loaded before the init's fork: stdlib ``os`` and ``time`` only.
"""

from __future__ import annotations

import os
import time

PROCESS_NAME = "GRACEFUL_PROCESS_NAME"
"""Set for every supervised process: its name (a graceful app puts it in its lines)."""
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

_format = "text"


def use(log_format: str) -> None:
    """Write every later line in ``log_format`` (``text`` or ``json``)."""
    global _format
    _format = log_format


def json_mode() -> bool:
    return _format == "json"


def json_line(
    created: float,
    level: str,
    logger: str,
    message: str,
    fields: dict[str, object] | None = None,
) -> str:
    """One log line as a JSON object: ``time`` (RFC 3339, UTC, ms), ``level``,
    ``logger``, ``message``, ``pid``, ``process`` (a supervised process's name) and
    the line's own fields (the summary's figures, a relayed line's ``source``)."""
    import json

    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    record: dict[str, object] = {
        "time": f"{stamp}.{int(created % 1 * 1000):03d}Z",
        "level": level,
        "logger": logger,
        "message": message,
        "pid": os.getpid(),
    }
    name = os.environ.get(PROCESS_NAME, "").strip()
    if name:
        record["process"] = name
    if fields:
        record.update(fields)
    return json.dumps(record, default=str)


def who() -> str:
    """``graceful``, or ``graceful NAME[PID]`` in a supervised process."""
    name = os.environ.get(PROCESS_NAME, "").strip()
    if not name or any(c.isspace() for c in name):
        return "graceful"
    return f"graceful {name}[{os.getpid()}]"


def log_format() -> str:
    """The ``logging.Formatter`` format of graceful's own handler."""
    return "%(asctime)s " + who().replace("%", "%%") + " %(levelname)s: %(message)s"


def leveled(level: str, message: str) -> str:
    """``message`` as one of graceful's log lines, timestamped as logging does."""
    now = time.time()
    if _format == "json":
        return json_line(now, level, "graceful", message)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
    return f"{stamp},{int(now % 1 * 1000):03d} {who()} {level}: {message}"


def write(line: str) -> None:
    """Write one line to fd 2 at once, without any Python-level lock."""
    try:
        os.write(2, (line.rstrip("\n") + "\n").encode(errors="replace"))
    except OSError:
        pass


def say(level: str, message: str, threshold: str = "DEBUG") -> None:
    """``message`` at ``level`` on stderr, unless ``level`` is below ``threshold``."""
    if LEVELS.index(level) >= LEVELS.index(threshold):
        write(leveled(level, message))


def usage_error(message: str) -> None:
    """A command-line error: ``graceful: error: MESSAGE`` (a JSON line in json mode)."""
    write(leveled("ERROR", message) if _format == "json" else f"graceful: error: {message}")
