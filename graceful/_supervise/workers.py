"""``python -m graceful --workers N MODULE:ATTR``: N copies of the app, supervised.

The parent never imports the app. It runs graceful's own runtime with a ``main``
that starts N workers, each ``python -m graceful ... MODULE:ATTR`` with its own
loop, hooks and deadline, as supervised processes of one :class:`Supervisor`:

* a worker that exits non-zero is restarted with backoff; one that keeps crashing
  fails and stops the whole app with exit code 1, so the orchestrator restarts the
  container; one that exits 0 on its own stops the app with exit code 0;
* a stop of the parent (SIGTERM, SIGINT) reaches every worker as SIGTERM at the
  start of its shutdown (phase 2), and a worker still running at the parent's
  deadline is SIGKILLed; each worker's own grace is the parent's window less the
  parent's safety margin, so a worker normally finishes its whole sequence in time;
* SIGHUP replaces the workers one at a time (rolling restart);
* the parent's exit code is 1 if any worker had to be killed, failed, or did not
  exit 0 from its own shutdown.

Workers inherit the parent's stdout and stderr (their lines are not relayed) and
see ``GRACEFUL_WORKER_ID`` (0 to N-1) in their environment.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import tempfile
from collections.abc import Awaitable, Callable, Sequence

from .._config import MIN_GRACE, Config
from .._core.deadline import KILL_RESERVE, safety_margin
from .._core.runtime import request_shutdown, wait_for_shutdown
from .._health.readiness import state as readiness
from .options import Options
from .program import FINAL, Managed, ProcessState
from .supervisor import Supervisor

NO_START_FILE = "GRACEFUL_NO_START_FILE"
"""Set in a worker's environment: where it writes its exit code if its app cannot be
loaded (read by ``tell_the_parent_it_did_not_start``)."""

log = logging.getLogger("graceful")

# Options passed on to every worker as flags (the rest stay with the parent: the
# init, the health server, the number of workers).
_PASSED_ON = ("loop", "log_level", "log_format", "task_errors", "readiness", "liveness_max_lag")
# Options the workers must not read from the environment they inherit (empty = unset).
_PARENT_ONLY = {
    "GRACEFUL_WORKERS": "",
    "GRACEFUL_HEALTH_PORT": "",
    "GRACEFUL_CONTROL_SOCKET": "",
    "GRACEFUL_METRICS": "",
}


def tell_the_parent_it_did_not_start(code: int) -> None:
    """In a worker: its app could not be loaded; the parent stops instead of restarting."""
    path = os.environ.get(NO_START_FILE)
    if path:
        try:
            with open(path, "w") as f:
                f.write(f"{code}\n")
        except OSError:
            pass


def worker_grace(config: Config) -> float:
    """The grace of each worker: what is left of the parent's window at the moment the
    parent stops its workers, less the parent's safety margin and its SIGKILL reserve."""
    left = config.grace - config.drain_delay - safety_margin(config.grace) - KILL_RESERVE
    return max(MIN_GRACE, round(left, 3))


def worker_argv(config: Config, spec: str, app_args: Sequence[str]) -> list[str]:
    argv = [sys.executable, "-m", "graceful", "--workers", "0", "--init", "off"]
    argv += ["--grace", f"{worker_grace(config):g}", "--drain-delay", "0"]
    for name in _PASSED_ON:
        argv += [f"--{name.replace('_', '-')}", str(getattr(config, name))]
    return [*argv, spec, *app_args]


def make_main(config: Config, spec: str, app_args: Sequence[str]) -> Callable[[], Awaitable[None]]:
    """The parent's ``main``: start the workers and wait for the shutdown.

    The workers are essential: one that ends for good (fails, or exits 0 on its own)
    stops them all, and one that does not stop cleanly makes the exit code 1.
    """
    argv = worker_argv(config, spec, app_args)

    async def workers() -> None:
        # A worker whose app cannot be loaded (a wrong MODULE:ATTR, an import that
        # raises) writes its exit code to this file before it exits: restarting it
        # would only fail again, so the parent stops at once with that code instead.
        no_start = tempfile.NamedTemporaryFile(prefix="graceful-workers-", delete=False)
        no_start.close()
        os.truncate(no_start.name, 0)

        told = False

        def did_not_start(managed: Managed, state: ProcessState) -> None:
            nonlocal told
            if told or (state != ProcessState.BACKING_OFF and state not in FINAL):
                return
            try:
                written = open(no_start.name).read().split()
            except OSError:
                return
            if written:
                told = True
                code = int(written[0])
                log.error(
                    "%s could not load %s (exit code %d): stopping instead of restarting it."
                    " Fix the app; its own lines above say what failed",
                    managed.name,
                    spec,
                    code,
                )
                request_shutdown(code, f"{managed.name} could not load the app")

        up: set[str] = set()

        def on_state(managed: Managed, state: ProcessState) -> None:
            # The app is ready when every worker is: each says READY=1 once its own
            # readiness turns on (its server listens), and one that exits or restarts
            # takes the app out of rotation until it is back.
            if state == ProcessState.RUNNING:
                up.add(managed.name)
            else:
                up.discard(managed.name)
            if len(up) == config.workers:
                readiness.unblock("workers")
            else:
                readiness.block("workers", f"{len(up)} of {config.workers} ready")
            did_not_start(managed, state)

        # --readiness is the workers' (passed on to them); the parent is ready when
        # they all are, whatever the mode.
        readiness.mode = "auto"
        readiness.block("workers", f"0 of {config.workers} ready")
        try:
            async with Supervisor() as sup:
                for i in range(config.workers):
                    options = Options(
                        argv,
                        name=f"worker-{i}",
                        restart="on-failure",
                        stop_signal=signal.SIGTERM,
                        stop_timeout=None,
                        env={
                            "GRACEFUL_WORKER_ID": str(i),
                            NO_START_FILE: no_start.name,
                            **_PARENT_ONLY,
                        },
                        cwd=None,
                        backoff=(0.5, 30.0),
                        max_restarts=5,
                        restart_window=60.0,
                        min_uptime=1.0,
                        output="inherit",  # each worker's lines carry its name
                        logger=None,
                        essential=True,
                        blocks_readiness=False,
                        rolling_restart=True,
                        pass_fds=(),
                        on_state=on_state,
                        success_codes=(0,),
                        ready="notify",
                        death_signal=signal.SIGTERM,  # a worker stops itself in its window
                    )
                    options.tunable = False
                    sup._add(options, ())
                log.info("%d workers of %s starting", config.workers, spec)
                await wait_for_shutdown()
        finally:
            os.unlink(no_start.name)

    return workers
