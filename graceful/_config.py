"""One Config for every way of starting graceful: command-line flags, GRACEFUL_*
environment variables and the keyword arguments of ``graceful.run()``.

Flags win over environment variables, which win over the defaults. Every value is
validated here, so the rest of the package can trust it.
"""

from __future__ import annotations

import math

from ._errors import UsageError

# typing is not imported at run time: this module is loaded before the fork into
# the init, which should stay small (mypy treats TYPE_CHECKING as True).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

LOOPS = ("auto", "asyncio", "uvloop")
INIT_MODES = ("auto", "on", "off")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

# option name -> (flag, environment variable)
SOURCES = {
    "grace": ("--grace", "GRACEFUL_GRACE"),
    "loop": ("--loop", "GRACEFUL_LOOP"),
    "log_level": ("--log-level", "GRACEFUL_LOG_LEVEL"),
    "init": ("--init", "GRACEFUL_INIT"),
}


class Config:
    """The options of one run. Durations are float seconds.

    A plain class rather than a dataclass: ``dataclasses`` imports ``inspect``,
    about 12 ms, paid on every start and by the init process.
    """

    __slots__ = ("grace", "loop", "log_level", "init", "handle_signals")

    def __init__(
        self,
        grace: float = 10.0,
        loop: str = "auto",
        log_level: str = "INFO",
        init: str = "auto",
        handle_signals: bool = True,
    ) -> None:
        self.grace: float = _check("grace", grace, "grace")
        """The whole window from the first stop signal to process exit."""
        self.loop: str = _check("loop", loop, "loop")
        """``auto`` (uvloop when importable), ``asyncio`` or ``uvloop``."""
        self.log_level: str = _check("log_level", log_level, "log_level")
        """Level of the ``graceful`` logger."""
        self.init: str = _check("init", init, "init")
        """Run a separate init process: ``auto`` (when PID 1), ``on`` or ``off``."""
        self.handle_signals = bool(handle_signals)
        """Install SIGTERM/SIGINT handlers (only possible in the main thread)."""

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"Config({fields})"

    @classmethod
    def from_sources(cls, flags: Mapping[str, str], env: Mapping[str, str]) -> Config:
        """Build a Config from raw flag values (keyed by option name) and the environment."""
        values: dict[str, Any] = {}
        for name, (flag, var) in SOURCES.items():
            if name in flags:
                values[name] = _check(name, flags[name], flag)
            elif env.get(var, "") != "":
                values[name] = _check(name, env[var], var)
        return cls(**values)


def _check(name: str, value: Any, source: str) -> Any:
    """Validate one option; ``source`` is how the user spelled it, for the message."""
    if name == "grace":
        try:
            grace = float(value)
        except (TypeError, ValueError):
            grace = math.nan
        if not (math.isfinite(grace) and grace > 0):
            raise UsageError(
                f"{source} must be a number of seconds greater than 0, got {value!r};"
                f" use e.g. {source_example(source, '10')}"
            )
        return grace
    choices = {"loop": LOOPS, "init": INIT_MODES, "log_level": LOG_LEVELS}[name]
    text = str(value).upper() if name == "log_level" else str(value).lower()
    if text not in choices:
        raise UsageError(
            f"{source} must be one of {', '.join(choices)}, got {value!r};"
            f" use e.g. {source_example(source, repr(choices[0]) if source == name else choices[0])}"
        )
    return text


def source_example(source: str, value: str) -> str:
    if source.startswith("--"):
        return f"{source} {value}"
    return f"{source}={value}"
