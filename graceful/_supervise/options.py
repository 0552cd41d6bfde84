"""One supervised program's options, checked once when it is started.

``Supervisor.start()`` is the one place that lists them with their defaults and
documentation; it hands them here, and from then on a program reads typed,
validated values (``Managed.options``), never the caller's raw arguments.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .._errors import UsageError
from .._speak import PROCESS_NAME
from .._validate import count, flag, seconds
from .backoff import Backoff

if TYPE_CHECKING:
    from .program import Managed, ProcessState

RESTART_POLICIES = ("on-failure", "always", "never")
OUTPUT_MODES = ("log", "inherit", "discard")
READY_MODES = ("uptime", "notify")


class Options:
    """The checked options of one program (see ``Supervisor.start()`` for each)."""

    __slots__ = (
        "argv",
        "name",
        "restart",
        "stop_signal",
        "stop_timeout",
        "env",
        "cwd",
        "backoff",
        "min_uptime",
        "output",
        "logger",
        "essential",
        "blocks_readiness",
        "rolling_restart",
        "pass_fds",
        "on_state",
        "success_codes",
        "ready",
        "death_signal",
        "tunable",
    )

    def __init__(
        self,
        argv: Sequence[str | os.PathLike[str]],
        *,
        name: str,
        restart: str,
        stop_signal: int,
        stop_timeout: float | None,
        env: Mapping[str, str] | None,
        cwd: str | os.PathLike[str] | None,
        backoff: tuple[float, float],
        max_restarts: int,
        restart_window: float,
        min_uptime: float,
        output: str,
        logger: logging.Logger | None,
        essential: bool,
        blocks_readiness: bool,
        rolling_restart: bool,
        pass_fds: Sequence[int],
        on_state: Callable[[Managed, ProcessState], Any] | None,
        success_codes: Iterable[int],
        ready: str,
        death_signal: int,
    ) -> None:
        if not isinstance(name, str) or not name.strip() or any(c.isspace() for c in name):
            raise UsageError(f"name must be a word without spaces, got {name!r}; e.g. name='web'")
        self.name = name
        if isinstance(argv, (str, bytes)) or not argv:
            raise UsageError(
                f"argv of {name!r} must be a non-empty list, got {argv!r};"
                " e.g. ['python', '-m', 'worker']"
            )
        self.argv = [os.fspath(a) for a in argv]
        self.env = None if env is None else dict(env)
        self.cwd = None if cwd is None else os.fspath(cwd)
        _check_command(name, self.argv[0], self.environment(None), self.cwd)
        self.restart = _choice(name, "restart", restart, RESTART_POLICIES)
        self.output = _choice(name, "output", output, OUTPUT_MODES)
        self.ready = _choice(name, "ready", ready, READY_MODES)
        self.stop_signal = _signal(name, "stop_signal", stop_signal)
        self.death_signal = _signal(name, "death_signal", death_signal)
        self.stop_timeout = (
            None if stop_timeout is None else _seconds(name, "stop_timeout", stop_timeout, True)
        )
        initial, maximum = _pair(name, backoff)
        restarts = count(max_restarts, f"max_restarts of {name!r}", example="5")
        window = _seconds(name, "restart_window", restart_window, True)
        self.backoff = Backoff(initial, maximum, restarts, window)
        self.min_uptime = _seconds(name, "min_uptime", min_uptime, False)
        self.logger = logger or logging.getLogger(f"graceful.process.{name}")
        self.essential = flag(essential, f"essential of {name!r}")
        self.blocks_readiness = flag(blocks_readiness, f"blocks_readiness of {name!r}")
        self.rolling_restart = flag(rolling_restart, f"rolling_restart of {name!r}")
        self.pass_fds = tuple(pass_fds)
        if on_state is not None and not callable(on_state):
            raise UsageError(f"on_state of {name!r} must be a function, got {on_state!r}")
        self.on_state = on_state
        self.success_codes = _codes(name, success_codes)
        self.tunable = True
        """The user can change these options (not so for ``--workers``' own)."""

    def environment(self, notify_socket: str | None) -> dict[str, str]:
        """The environment of a new process: this process's (as it is now), the
        program's ``env``, its name, and the notify socket it may use (or none: the
        manager's socket is graceful's to give, never the one it was started with)."""
        env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
        env.update(self.env or {})
        env[PROCESS_NAME] = self.name
        if notify_socket is not None:
            env["NOTIFY_SOCKET"] = notify_socket
        return env


def _check_command(name: str, command: str, env: Mapping[str, str], cwd: str | None) -> None:
    if os.sep in command:
        path = command if cwd is None else os.path.join(cwd, command)
        if not os.path.isfile(path):
            raise UsageError(f"command {command!r} of {name!r} not found; check the path")
        if not os.access(path, os.X_OK):
            raise UsageError(f"command {command!r} of {name!r} is not executable; check its mode")
        return
    if shutil.which(command, path=env.get("PATH", os.defpath)) is None:
        raise UsageError(f"command {command!r} of {name!r} not found; check the name and PATH")


def _choice(name: str, what: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise UsageError(
            f"{what} of {name!r} must be one of {', '.join(map(repr, choices))}, got {value!r}"
        )
    return str(value)


def _signal(name: str, what: str, value: Any) -> signal.Signals:
    try:
        if isinstance(value, bool):
            raise ValueError
        return signal.Signals(value)
    except ValueError:
        raise UsageError(
            f"{what} of {name!r} must be a signal, got {value!r}; e.g. signal.SIGTERM"
        ) from None


def _seconds(name: str, what: str, value: Any, positive: bool) -> float:
    return seconds(value, f"{what} of {name!r}", low_open=positive)


def _pair(name: str, value: Any) -> tuple[float, float]:
    what = f"backoff of {name!r}"
    try:
        initial, maximum = value
        initial = seconds(initial, what, low_open=True)
        maximum = seconds(maximum, what, low_open=True)
    except (TypeError, ValueError, UsageError):
        raise UsageError(
            f"{what} must be (initial, maximum) seconds, got {value!r}; e.g. (0.5, 30)"
        ) from None
    if initial > maximum:
        raise UsageError(f"{what} needs 0 < initial <= maximum, got {value!r}; e.g. (0.5, 30)")
    return initial, maximum


def _codes(name: str, value: Any) -> frozenset[int]:
    what = f"success_codes of {name!r}"
    if isinstance(value, (str, bytes, int)):
        value = [value]  # one code alone: (0, 2) was meant
    try:
        codes = [count(code, what) for code in value]
    except TypeError:
        codes = []
    if not codes or any(code > 255 for code in codes):
        raise UsageError(f"{what} must be exit codes 0 to 255, got {value!r}; e.g. (0, 2)")
    return frozenset(codes)
