"""One Config for every way of starting graceful: command-line flags, GRACEFUL_*
environment variables and the keyword arguments of ``graceful.run()``.

Flags win over environment variables, which win over the defaults. Every value is
validated here, so the rest of the package can trust it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from ._errors import UsageError

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


@dataclasses.dataclass(frozen=True)
class Config:
    """The options of one run. Durations are float seconds."""

    grace: float = 10.0
    """The whole window from the first stop signal to process exit."""
    loop: str = "auto"
    """``auto`` (uvloop when importable), ``asyncio`` or ``uvloop``."""
    log_level: str = "INFO"
    """Level of the ``graceful`` logger."""
    init: str = "auto"
    """Run a separate init process: ``auto`` (when PID 1), ``on`` or ``off``."""
    handle_signals: bool = True
    """Install SIGTERM/SIGINT handlers (only possible in the main thread)."""

    def __post_init__(self) -> None:
        for field in ("grace", "loop", "log_level", "init"):
            object.__setattr__(self, field, _check(field, getattr(self, field), field))

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
            f" use e.g. {source_example(source, choices[0])}"
        )
    return text


def source_example(source: str, value: str) -> str:
    if source.startswith("--"):
        return f"{source} {value}"
    if source.isupper():
        return f"{source}={value}"
    return f"{source}={value!r}"
