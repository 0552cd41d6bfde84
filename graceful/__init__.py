"""graceful: an asyncio runtime that stops services correctly in containers.

The public names are loaded on first use (PEP 562): ``python -m graceful`` imports
this package before anything else, and it must not pull in asyncio before the
stop signals are blocked.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # not typing's: importing typing costs ~2 ms on every start

__version__ = "0.1.0"

if TYPE_CHECKING:
    from ._errors import GracefulError as GracefulError
    from ._errors import NotRunningError as NotRunningError
    from ._errors import TargetError as TargetError
    from ._errors import UsageError as UsageError
    from ._hooks import ShutdownContext as ShutdownContext
    from ._hooks import on_shutdown as on_shutdown
    from ._managed import Managed as Managed
    from ._managed import ProcessState as ProcessState
    from ._readiness import readiness_check as readiness_check
    from ._readiness import set_ready as set_ready
    from ._runtime import is_shutting_down as is_shutting_down
    from ._runtime import protect as protect
    from ._runtime import request_shutdown as request_shutdown
    from ._runtime import run as run
    from ._runtime import until_shutdown as until_shutdown
    from ._runtime import wait_for_shutdown as wait_for_shutdown
    from ._supervisor import Supervisor as Supervisor
    from ._supervisor import spawn as spawn

_WHERE = {
    "run": "_runtime",
    "request_shutdown": "_runtime",
    "is_shutting_down": "_runtime",
    "wait_for_shutdown": "_runtime",
    "protect": "_runtime",
    "until_shutdown": "_runtime",
    "on_shutdown": "_hooks",
    "ShutdownContext": "_hooks",
    "set_ready": "_readiness",
    "readiness_check": "_readiness",
    "Supervisor": "_supervisor",
    "Managed": "_managed",
    "ProcessState": "_managed",
    "spawn": "_supervisor",
    "GracefulError": "_errors",
    "UsageError": "_errors",
    "TargetError": "_errors",
    "NotRunningError": "_errors",
}

__all__ = (
    "run",
    "on_shutdown",
    "request_shutdown",
    "is_shutting_down",
    "wait_for_shutdown",
    "protect",
    "until_shutdown",
    "ShutdownContext",
    "set_ready",
    "readiness_check",
    "Supervisor",
    "Managed",
    "ProcessState",
    "spawn",
    "GracefulError",
    "UsageError",
    "TargetError",
    "NotRunningError",
)


def __getattr__(name: str) -> object:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'graceful' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"graceful.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted((*__all__, "__version__"))
