"""One Config for every way of starting graceful: command-line flags, GRACEFUL_*
environment variables and the keyword arguments of ``graceful.run()``.

Flags win over environment variables, which win over the defaults. Every value is
validated here, so the rest of the package can trust it.
"""

from __future__ import annotations

from ._errors import UsageError
from ._validate import seconds

# typing is not imported at run time: this module is loaded before the fork into
# the init, which should stay small (mypy treats TYPE_CHECKING as True).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

LOOPS = ("auto", "asyncio", "uvloop")
INIT_MODES = ("auto", "on", "off")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
READINESS_MODES = ("auto", "manual")
TASK_ERROR_POLICIES = ("log", "shutdown")
LOG_FORMATS = ("text", "json")

MIN_GRACE = 0.5
"""Below this the sequence and the interpreter's own exit (~20 ms, far more on a busy
machine) cannot be promised to fit in the window."""
MAX_GRACE = 7 * 24 * 3600.0
"""A week: far beyond any orchestrator's window, well inside what the timers hold
(a grace of 1e10 s overflowed ``time_t`` in the watchdog's wait)."""
MAX_LAG = 3600.0
# The default --liveness-max-lag is 5 s. Ordinary stalls of a healthy loop (a garbage
# collection, a large JSON document, a synchronous DNS lookup, CPU throttling by a
# container's limit) last tens to hundreds of ms, so 5 s does not restart a busy but
# healthy pod; a loop stuck for 5 s serves nobody, and Kubernetes' default liveness
# probe (every 10 s, 3 failures) then restarts it ~30 s later if it stays stuck. It is
# also below the default grace of 10 s, so a loop that blocks during a stop is reported
# with its stack before the deadline ends the process.

MAX_WORKERS = 1024

# option name -> (flag, environment variable)
SOURCES = {
    "grace": ("--grace", "GRACEFUL_GRACE"),
    "drain_delay": ("--drain-delay", "GRACEFUL_DRAIN_DELAY"),
    "loop": ("--loop", "GRACEFUL_LOOP"),
    "log_level": ("--log-level", "GRACEFUL_LOG_LEVEL"),
    "init": ("--init", "GRACEFUL_INIT"),
    "task_errors": ("--task-errors", "GRACEFUL_TASK_ERRORS"),
    "health_port": ("--health-port", "GRACEFUL_HEALTH_PORT"),
    "health_host": ("--health-host", "GRACEFUL_HEALTH_HOST"),
    "readiness": ("--readiness", "GRACEFUL_READINESS"),
    "liveness_max_lag": ("--liveness-max-lag", "GRACEFUL_LIVENESS_MAX_LAG"),
    "workers": ("--workers", "GRACEFUL_WORKERS"),
    "stop_signals": ("--stop-signal", "GRACEFUL_STOP_SIGNAL"),
    "control_socket": ("--control-socket", "GRACEFUL_CONTROL_SOCKET"),
    "log_format": ("--log-format", "GRACEFUL_LOG_FORMAT"),
    "metrics": ("--metrics", "GRACEFUL_METRICS"),
}


class Config:
    """The options of one run. Durations are float seconds.

    A plain class rather than a dataclass: ``dataclasses`` imports ``inspect``,
    about 12 ms, paid on every start and by the init process.
    """

    __slots__ = (
        "grace",
        "drain_delay",
        "loop",
        "log_level",
        "init",
        "task_errors",
        "health_port",
        "health_host",
        "readiness",
        "liveness_max_lag",
        "workers",
        "stop_signals",
        "control_socket",
        "log_format",
        "metrics",
        "handle_signals",
        "sources",
    )

    def __init__(
        self,
        grace: float = 10.0,
        loop: str = "auto",
        log_level: str = "INFO",
        init: str = "auto",
        handle_signals: bool = True,
        *,
        drain_delay: float = 0.0,
        task_errors: str = "log",
        health_port: int | None = None,
        health_host: str = "0.0.0.0",
        readiness: str = "auto",
        liveness_max_lag: float = 5.0,
        workers: int = 0,
        stop_signals: Any = (),
        control_socket: str | None = None,
        log_format: str = "text",
        metrics: Any = False,
        sources: Mapping[str, str] | None = None,
    ) -> None:
        self.sources: dict[str, str] = dict(sources or {})
        """How the user spelled each option that was given (``--grace``, ``GRACEFUL_GRACE``)."""
        self.grace: float = self._check("grace", grace)
        """The whole window from the first stop signal to process exit."""
        self.drain_delay: float = self._check("drain_delay", drain_delay)
        """After a stop signal: readiness fails at once, the app runs on this long,
        then the sequence starts. Counts inside ``grace``."""
        self.loop: str = self._check("loop", loop)
        """``auto`` (uvloop when importable), ``asyncio`` or ``uvloop``."""
        self.log_level: str = self._check("log_level", log_level)
        """Level of the ``graceful`` logger."""
        self.init: str = self._check("init", init)
        """Run a separate init process: ``auto`` (when PID 1), ``on`` or ``off``."""
        self.task_errors: str = self._check("task_errors", task_errors)
        """A task that dies of an exception nobody retrieves: ``log`` it, or ``shutdown``."""
        self.health_port: int | None = self._check("health_port", health_port)
        """Port of the health server (``/livez``, ``/readyz``); None: no server; 0: any free port."""
        self.health_host: str = self._check("health_host", health_host)
        self.readiness: str = self._check("readiness", readiness)
        """``auto``: ready once ``main`` runs; ``manual``: once the app calls ``set_ready()``."""
        self.liveness_max_lag: float = self._check("liveness_max_lag", liveness_max_lag)
        """``/livez`` fails while the event loop is late by more than this."""
        self.workers: int = self._check("workers", workers)
        """Run this many copies of the app as supervised processes (0: run it here)."""
        self.stop_signals: tuple[int, ...] = self._check("stop_signals", stop_signals)
        """Signals that start the sequence as SIGTERM does, besides SIGTERM and SIGINT
        (a container's ``STOPSIGNAL``, Kubernetes' ``lifecycle.stopSignal``)."""
        self.control_socket: str | None = self._check("control_socket", control_socket)
        """Path of the Unix socket ``python -m graceful ctl`` talks to (None: no socket)."""
        self.log_format: str = self._check("log_format", log_format)
        """``text`` (one sentence a line) or ``json`` (one object a line)."""
        self.metrics: bool = self._check("metrics", metrics)
        """Serve ``/metrics`` (Prometheus) on the health server."""
        if self.metrics and self.health_port is None:
            raise UsageError(
                f"{self.spelling('metrics')} serves /metrics on the health server; give"
                f" {self.spelling('health_port') if 'health_port' in self.sources else 'a health port'}"
                f" too, e.g. {source_example(_twin(self.spelling('metrics')), '9000')}"
            )
        self.handle_signals = bool(handle_signals)
        """Install SIGTERM/SIGINT handlers (only possible in the main thread)."""
        if self.workers and 1 in self.stop_signals:  # SIGHUP
            raise UsageError(
                f"{self.spelling('workers')} uses SIGHUP for a rolling restart of the workers;"
                f" drop SIGHUP from {self.spelling('stop_signals')}"
            )
        if self.drain_delay > self.grace / 2:
            raise UsageError(
                f"{self.spelling('drain_delay')} {self.drain_delay:g} s leaves less than half of"
                f" {self.spelling('grace')} {self.grace:g} s to the shutdown sequence;"
                f" use at most {self.grace / 2:g} s, or raise the grace"
            )

    def spelling(self, name: str) -> str:
        """The flag, variable or keyword the user gave ``name`` with."""
        return self.sources.get(name, name)

    def _check(self, name: str, value: Any) -> Any:
        return check(name, value, self.spelling(name))

    def __repr__(self) -> str:
        fields = ", ".join(
            f"{name}={getattr(self, name)!r}" for name in self.__slots__ if name != "sources"
        )
        return f"Config({fields})"

    @classmethod
    def from_sources(cls, flags: Mapping[str, str], env: Mapping[str, str]) -> Config:
        """Build a Config from raw flag values (keyed by option name) and the environment."""
        values: dict[str, Any] = {}
        sources: dict[str, str] = {}
        for name, (flag, var) in SOURCES.items():
            if name in flags:
                values[name], sources[name] = flags[name], flag
            elif env.get(var, "") != "":
                values[name], sources[name] = env[var], var
        return cls(**values, sources=sources)


def check(name: str, value: Any, source: str) -> Any:
    """Validate one option; ``source`` is how the user spelled it, for the message."""
    if name == "grace":
        return _seconds(source, value, MIN_GRACE, MAX_GRACE, "10")
    if name == "drain_delay":
        return _seconds(source, value, 0.0, MAX_GRACE, "5")
    if name == "liveness_max_lag":
        return _seconds(source, value, 0.1, MAX_LAG, "5")
    if name == "health_port":
        return _port(source, value)
    if name == "workers":
        return _count(source, value, MAX_WORKERS, "4")
    if name == "stop_signals":
        return _signals(source, value)
    if name == "metrics":
        return _switch(source, value)
    if name == "control_socket":
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip() or "\0" in value:
            raise UsageError(
                f"{source} must be a file path for a Unix socket, got {value!r};"
                f" use e.g. {source_example(source, _quoted(source, '/tmp/graceful.sock'))}"
            )
        return value
    if name == "health_host":
        if not isinstance(value, str) or not value.strip():
            raise UsageError(
                f"{source} must be an address to listen on, got {value!r};"
                f" use e.g. {source_example(source, '0.0.0.0')}"
            )
        return value.strip()
    choices = {
        "loop": LOOPS,
        "init": INIT_MODES,
        "log_level": LOG_LEVELS,
        "readiness": READINESS_MODES,
        "task_errors": TASK_ERROR_POLICIES,
        "log_format": LOG_FORMATS,
    }[name]
    text = str(value).upper() if name == "log_level" else str(value).lower()
    if not isinstance(value, str) or text not in choices:
        raise UsageError(
            f"{source} must be one of {', '.join(choices)}, got {value!r};"
            f" use e.g. {source_example(source, repr(choices[0]) if source == name else choices[0])}"
        )
    return text


def _switch(source: str, value: Any) -> bool:
    """``on``/``off`` (also true/false, yes/no, 1/0) from text; a bool from the API."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if isinstance(value, str) else None
    if text in ("on", "true", "yes", "1"):
        return True
    if text in ("off", "false", "no", "0"):
        return False
    raise UsageError(
        f"{source} must be on or off, got {value!r};"
        f" use e.g. {source_example(source, 'True' if source == 'metrics' else 'on')}"
    )


def _twin(source: str) -> str:
    """The health port's option, spelled as ``source`` (a metrics option) was."""
    return {"--metrics": "--health-port", "GRACEFUL_METRICS": "GRACEFUL_HEALTH_PORT"}.get(
        source, "health_port"
    )


def _quoted(source: str, example: str) -> str:
    """``example`` as the user would write it: quoted for a keyword of graceful.run()."""
    return repr(example) if not source.startswith(("-", "GRACEFUL_")) else example


def _seconds(source: str, value: Any, low: float, high: float, example: str) -> float:
    return seconds(
        value, source, low=low, high=high, example=source_example(source, example), text=True
    )


# Signals a stop may not be made of: uncatchable, the child-status signal, the
# faults the kernel raises in a thread, and the terminal's job control.
_NOT_STOP_SIGNALS = {"SIGKILL", "SIGSTOP", "SIGCHLD", "SIGSEGV", "SIGBUS", "SIGFPE", "SIGILL",
                     "SIGTRAP", "SIGSYS", "SIGABRT", "SIGTTIN", "SIGTTOU", "SIGTSTP", "SIGCONT",
                     "SIGPIPE"}  # fmt: skip


def _signals(source: str, value: Any) -> tuple[int, ...]:
    """``SIGQUIT``, ``quit``, ``3``, or several separated by commas (or a list)."""
    import signal

    example = source_example(source, "['SIGQUIT']" if source == "stop_signals" else "SIGQUIT")
    if not isinstance(value, (str, list, tuple)):
        raise UsageError(f"{source} must name signals, got {value!r}; use e.g. {example}")
    words = value.split(",") if isinstance(value, str) else list(value)
    found: set[int] = set()
    for word in words:
        text = str(word).strip().upper()
        if not text:
            continue
        try:
            sig = (
                signal.Signals(int(text))
                if text.isdigit()
                else signal.Signals[text if text.startswith("SIG") else f"SIG{text}"]
            )
        except (KeyError, ValueError):
            raise UsageError(
                f"{source} must name signals such as SIGQUIT or SIGHUP (or their numbers),"
                f" got {word!r}; use e.g. {example}"
            ) from None
        if sig.name in _NOT_STOP_SIGNALS or sig >= 32:
            raise UsageError(
                f"{source} cannot use {sig.name}: it cannot be caught, or the kernel or the"
                f" terminal uses it; use e.g. {example}"
            )
        if sig not in (signal.SIGTERM, signal.SIGINT):
            found.add(int(sig))
    return tuple(sorted(found))


def _port(source: str, value: Any) -> int | None:
    if value is None:
        return None
    port = -1
    if isinstance(value, int) and not isinstance(value, bool):
        port = value
    elif isinstance(value, str) and value.strip().isdigit():
        port = int(value.strip())
    if not 0 <= port <= 65535:
        raise UsageError(
            f"{source} must be a port number from 1 to 65535 (0: any free port), got {value!r};"
            f" use e.g. {source_example(source, '8081')}"
        )
    return port


def _count(source: str, value: Any, high: int, example: str) -> int:
    count = -1
    if isinstance(value, int) and not isinstance(value, bool):
        count = value
    elif isinstance(value, str) and value.strip().isdigit():
        count = int(value.strip())
    if not 0 <= count <= high:
        raise UsageError(
            f"{source} must be a whole number from 0 to {high}, got {value!r};"
            f" use e.g. {source_example(source, example)}"
        )
    return count


def source_example(source: str, value: str) -> str:
    if source.startswith("--"):
        return f"{source} {value}"
    return f"{source}={value}"


def say(config: Config, level: str, line: str) -> None:
    """One log line on stderr, timestamped as the logging module would, without it
    (for the code that runs before logging is set up, and in the init)."""
    from ._speak import say as speak

    speak(level, line, config.log_level)


def init_wanted(config: Config, exec_mode: bool) -> bool:
    """Whether to run the init: Linux, and PID 1, ``--init on`` or the exec mode. Here,
    not in ``_pid1.init``, so that a start without the init does not import it."""
    import os
    import sys

    if not sys.platform.startswith("linux"):
        say(
            config,
            "DEBUG",
            f"init off: PID 1 duties are handled on Linux only, not on {sys.platform}",
        )
        return False
    if config.init == "on" or exec_mode:
        return True
    if config.init == "auto" and os.getpid() == 1:
        return True
    spelling = config.spelling("init")
    why = (
        f"{spelling}{' ' if spelling.startswith('--') else '='}off"
        if config.init == "off"
        else "not PID 1 (--init on adds a subreaper)"
    )
    say(config, "DEBUG", f"init off: {why}")
    return False
