"""graceful: an asyncio runtime that stops services correctly in containers.

Layout (the tree is the diagram; each package's ``__init__`` says more):
  __main__, _cli, _config, _errors   the entry: ``python -m graceful``, one Config
                                     from flags and GRACEFUL_* variables, exit codes
  _pid1/         the init (PID 1, subreaper) and the process-tree walk; loaded
                 before the fork, so no typing, dataclasses or asyncio in it
  _core/         the run (runtime), the six-phase stop (sequence, budget), the
                 deadline, hooks, signals, tasks
  _health/       the health server on its thread, readiness, checks, loop lag
  _supervise/    Supervisor, one program's life (program), processes, output,
                 backoff, ``--workers``
  integrations/  uvicorn, aiohttp, hypercorn: each imports its server only
  testing        helpers for users' own tests;  _probe: ``python -m graceful probe``

The public names are loaded on first use (PEP 562): ``python -m graceful`` imports
this package before anything else, and it must not pull in asyncio before the
stop signals are blocked.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # not typing's: importing typing costs ~2 ms on every start

__version__ = "0.1.0"

if TYPE_CHECKING:
    from ._core.hooks import ShutdownContext as ShutdownContext
    from ._core.hooks import on_shutdown as on_shutdown
    from ._core.runtime import is_shutting_down as is_shutting_down
    from ._core.runtime import protect as protect
    from ._core.runtime import request_shutdown as request_shutdown
    from ._core.runtime import run as run
    from ._core.runtime import until_shutdown as until_shutdown
    from ._core.runtime import wait_for_shutdown as wait_for_shutdown
    from ._errors import GracefulError as GracefulError
    from ._errors import NotRunningError as NotRunningError
    from ._errors import TargetError as TargetError
    from ._errors import UsageError as UsageError
    from ._health.readiness import readiness_check as readiness_check
    from ._health.readiness import set_ready as set_ready
    from ._supervise.program import Managed as Managed
    from ._supervise.program import ProcessState as ProcessState
    from ._supervise.supervisor import Supervisor as Supervisor
    from ._supervise.supervisor import spawn as spawn

_WHERE = {
    "run": "_core.runtime",
    "request_shutdown": "_core.runtime",
    "is_shutting_down": "_core.runtime",
    "wait_for_shutdown": "_core.runtime",
    "protect": "_core.runtime",
    "until_shutdown": "_core.runtime",
    "on_shutdown": "_core.hooks",
    "ShutdownContext": "_core.hooks",
    "set_ready": "_health.readiness",
    "readiness_check": "_health.readiness",
    "Supervisor": "_supervise.supervisor",
    "Managed": "_supervise.program",
    "ProcessState": "_supervise.program",
    "spawn": "_supervise.supervisor",
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
