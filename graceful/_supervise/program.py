"""One supervised program through its life: started, up (after ``min_uptime``, or
when it says ``READY=1``), restarted with backoff, failed, stopped with its group, replaced
by a rolling restart.

Everything here that must keep working during the shutdown is a loop callback,
not a task: phase 3 of the shutdown cancels every task, and a restart decision,
a stop in dependency order or a SIGKILL timer cut off there would leave
processes behind. Exits come from pidfds (``process``), the restart policy from
``backoff``; the :class:`~graceful._supervise.supervisor.Supervisor` decides the order.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import signal
from collections import deque
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from .._health.readiness import state as readiness
from .output import TAIL_LINES
from .process import Instance, describe

if TYPE_CHECKING:
    from .options import Options
    from .supervisor import Supervisor

log = logging.getLogger("graceful")

DEFAULT_STOP_TIMEOUT = 10.0
"""How long a process gets to stop outside a shutdown when it has no ``stop_timeout``."""


class ProcessState(str, enum.Enum):
    """Where a managed process is in its life. Compares equal to its value."""

    STARTING = "starting"
    """Waiting for its dependencies, or started and not yet up for ``min_uptime``."""
    RUNNING = "running"
    """Up: it has run ``min_uptime`` seconds, or it said ``READY=1`` (``ready="notify"``)."""
    BACKING_OFF = "backing-off"
    """Exited; waiting out the delay before the next start."""
    STOPPING = "stopping"
    """Sent its stop signal; waiting for it (and its group) to exit."""
    EXITED = "exited"
    """Ended for good: stopped, or exited when its restart policy says not to restart."""
    FAILED = "failed"
    """Ended for good: more than ``max_restarts`` early exits within the window."""

    def __str__(self) -> str:
        return self.value


FINAL = (ProcessState.EXITED, ProcessState.FAILED)


class Managed:
    """A program kept running by a :class:`Supervisor`; made by ``Supervisor.start()``."""

    def __init__(self, supervisor: Supervisor, options: Options, depends_on: list[Managed]) -> None:
        self.options = options
        self.name = options.name
        self.argv = options.argv
        self.restart = options.restart
        self.stop_signal = options.stop_signal
        self.stop_timeout = options.stop_timeout
        self.min_uptime = options.min_uptime
        self.essential = options.essential
        self.blocks_readiness = options.blocks_readiness
        self.rolling_restart = options.rolling_restart
        self.depends_on = depends_on
        self.dependants: list[Managed] = []
        self.restarts = 0
        """How many times it was started again after an exit."""
        self.returncode: int | None = None
        """The exit status of its last run (negative: killed by that signal), as ``Popen``'s."""
        self.killed = False
        """It had to be SIGKILLed when it was stopped."""
        self.status = ""
        """The last ``STATUS=`` it sent (``ready="notify"``)."""
        self._sup = supervisor
        assert supervisor._loop is not None
        self._loop = supervisor._loop
        self._state = ProcessState.STARTING
        self._backoff = options.backoff
        self._on_state = options.on_state
        self._tail: deque[str] = deque(maxlen=TAIL_LINES)
        self._current: Instance | None = None
        self._instances: set[Instance] = set()
        self._timer: asyncio.TimerHandle | None = None  # min_uptime, or the backoff delay
        self._kill_timer: asyncio.TimerHandle | None = None
        self._groups: list[Instance] = []  # while stopping: whose groups we wait for
        self._stopping = False
        self._restart_asked = False
        self._stop_started = 0.0
        self._kill_at: float | None = None
        self._kill_why = ""
        self._done: asyncio.Future[int | None] = self._loop.create_future()
        self._watchers: list[asyncio.Queue[ProcessState]] = []
        self._candidate: asyncio.Future[bool] | None = None  # a rolling restart's new one:
        self._candidate_instance: Instance | None = None  # counted (True) or exited (False)

    # -- what the app sees --------------------------------------------------------------

    @property
    def state(self) -> ProcessState:
        return self._state

    @property
    def pid(self) -> int | None:
        """The pid of the running process (None while there is none)."""
        current = self._current
        return current.pid if current is not None and current.alive else None

    def __repr__(self) -> str:
        return f"<Managed {self.name!r} {self._state.value} pid={self.pid}>"

    async def wait(self) -> int | None:
        """Wait until the process has ended for good (exited or failed); return its
        last exit status (None if it never ran).

        **Cancellation:** only this wait stops; the process is not affected.
        **Signals and deadline:** a shutdown stops the process, so the wait returns then.
        """
        return await asyncio.shield(self._done)

    async def stop(self) -> int | None:
        """Stop the process for good: no more restarts, its stop signal to its group,
        SIGKILL after its ``stop_timeout`` (10 s if none, or the shutdown deadline if
        sooner); return its exit status once it is gone.

        Stops this process only, not the ones that depend on it.
        **Cancellation:** the stop goes on (including the SIGKILL); only the wait ends.
        **Signals and deadline:** a shutdown that starts meanwhile brings the SIGKILL
        forward to its deadline if that comes first.
        """
        self._begin_stop(self._sup._stop_limit(self))
        return await self.wait()

    def uptime(self) -> float | None:
        """Seconds since the running process started (None while there is none)."""
        current = self._current
        if current is None or not current.alive:
            return None
        return self._loop.time() - current.started

    def restart_now(self) -> None:
        """Stop the running process (its stop signal, SIGKILL after ``stop_timeout``)
        and start it again at once, whatever its restart policy; one waiting for its
        backoff delay starts at once. No-op once it has ended for good or is stopping.

        **Signals and deadline:** a shutdown that starts meanwhile stops it for good.
        """
        if self._stopping or self._state in FINAL:
            return
        current = self._current
        if current is not None and current.alive:
            if not self._restart_asked:
                self._restart_asked = True
                log.info("process %r: restart asked for; sent %s", self.name, self.stop_signal.name)
                current.send(self.stop_signal)
                timeout = self.stop_timeout or DEFAULT_STOP_TIMEOUT
                self._loop.call_later(timeout, self._kill_if_alive, current)
        elif self._state == ProcessState.BACKING_OFF and self._timer is not None:
            self._timer.cancel()
            self._restart()

    def _kill_if_alive(self, instance: Instance) -> None:
        if instance.alive and instance is self._current and not self._stopping:
            instance.send(signal.SIGKILL)

    def send_signal(self, sig: int, *, group: bool = False) -> bool:
        """Send ``sig`` to the process (or its whole process group); False if it is not running."""
        current = self._current
        if current is None or not current.alive:
            return False
        return current.send(sig, group=group)

    def last_lines(self) -> list[str]:
        """The last lines it wrote (with ``output="log"``), oldest first."""
        return list(self._tail)

    async def states(self) -> AsyncIterator[ProcessState]:
        """Yield the current state, then every change, until a final one (exited, failed).

        **Cancellation:** ends the iteration only. **Signals and deadline:** a shutdown
        stops the process, so the iteration ends with its final state by the deadline.
        """
        queue: asyncio.Queue[ProcessState] = asyncio.Queue()
        queue.put_nowait(self._state)
        self._watchers.append(queue)
        try:
            while True:
                state = await queue.get()
                yield state
                if state in FINAL:
                    return
        finally:
            self._watchers.remove(queue)

    # -- life cycle ---------------------------------------------------------------------

    def _set_state(self, state: ProcessState) -> None:
        if state == self._state:
            return
        self._state = state
        log.debug("process %r: %s", self.name, state.value)
        for queue in self._watchers:
            queue.put_nowait(state)
        if self._on_state is not None:
            try:
                self._on_state(self, state)
            except Exception:
                log.exception("on_state callback of process %r raised", self.name)
        if state == ProcessState.RUNNING:
            for dependant in self.dependants:
                dependant._dependency_up()
        elif state in FINAL:
            self._finished()

    def _begin(self) -> None:
        if all(d._state == ProcessState.RUNNING for d in self.depends_on):
            self._spawn()
        else:
            log.info(
                "process %r waits for %s",
                self.name,
                [d.name for d in self.depends_on if d._state != ProcessState.RUNNING],
            )

    def _dependency_up(self) -> None:
        if self._current is None and not self._stopping and self._state == ProcessState.STARTING:
            self._begin()

    def _dependency_ended(self, dependency: Managed) -> None:
        if self._current is None and self._state == ProcessState.STARTING:
            log.error(
                "process %r will not start: its dependency %r %s",
                self.name,
                dependency.name,
                dependency._state.value,
            )
            self._set_state(ProcessState.FAILED)

    def _new_instance(self) -> Instance:
        o = self.options
        notify = self._sup._notify_address() if o.ready == "notify" else None
        return Instance(
            self.argv,
            env=o.environment(notify),
            cwd=o.cwd,
            output=o.output,
            label=self.name,
            logger=o.logger,
            tail=self._tail,
            pass_fds=o.pass_fds,
            death_signal=o.death_signal,
            on_exit=self._instance_exited,
        )

    def _spawn(self) -> None:
        self._timer = None
        self._set_state(ProcessState.STARTING)
        self._sup._spawn_soon(self._spawn_now)

    def _spawn_now(self) -> None:
        if self._stopping or self._state != ProcessState.STARTING:
            return  # stopped while it waited for its turn
        instance = self._new_instance()
        try:
            instance.spawn(self._loop)
        except OSError as exc:
            # The command was there at start(); it may have been removed since.
            log.error("process %r could not be started: %s", self.name, exc)
            instance.returncode = 127
            self._current = instance
            self._decide(instance)
            return
        self._current = instance
        self._instances.add(instance)
        log.info("process %r started, pid %d", self.name, instance.pid)
        if self.min_uptime <= 0:
            self._counted(instance)
        else:
            self._timer = self._loop.call_later(self.min_uptime, self._counted, instance)

    def _counted(self, instance: Instance) -> None:
        """It ran ``min_uptime``: the start counts (and it is up, unless it reports that)."""
        self._timer = None
        instance.counted = True
        if instance is self._current and not self._stopping:
            self._backoff.started()
            if self.options.ready == "uptime":
                self._set_state(ProcessState.RUNNING)

    def _notified(self, instance: Instance, fields: dict[str, str]) -> None:
        """A message of the notify protocol from ``instance`` (or a process of its group)."""
        if "STATUS" in fields:
            self.status = fields["STATUS"]
        if fields.get("READY") != "1" or instance.ready or self.options.ready != "notify":
            return
        instance.ready = True
        if instance is self._candidate_instance:
            self._candidate_settled(True)
        elif instance is self._current and not self._stopping:
            self._set_state(ProcessState.RUNNING)
        log.info("process %r is ready (pid %d)", self.name, instance.pid)

    def _instance_exited(self, instance: Instance) -> None:
        self._instances.discard(instance)
        if not self._stopping:  # (a stop waits for the group and kills it itself)
            self._stop_what_is_left(instance)
        if not instance.counted and self._loop.time() - instance.started >= self.min_uptime:
            instance.counted = True  # the min_uptime timer was late, the process was not
        if instance is self._candidate_instance:
            self._candidate_settled(False)
        if instance is not self._current:  # replaced by a rolling restart
            self._maybe_stopped()
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.returncode = instance.returncode
        if self._stopping:
            self._maybe_stopped()
            return
        if self._restart_asked:  # restart_now(): at once, not counted against it
            self._restart_asked = False
            log.info(
                "process %r exited with %s; restarting as asked",
                self.name,
                describe(instance.returncode),
            )
            self._restart()
            return
        self._decide(instance)

    def _stop_what_is_left(self, instance: Instance) -> None:
        """The process ended on its own: the children it left in its group get its stop
        signal, and SIGKILL after its stop timeout, as at a stop (they would otherwise
        run on, reparented, and pile up with every restart)."""
        if instance.signal_what_is_left(self.stop_signal):
            log.info(
                "process %r ended and left processes in its group; sent them %s",
                self.name,
                self.stop_signal.name,
            )
            timeout = self.stop_timeout or DEFAULT_STOP_TIMEOUT
            self._loop.call_later(timeout, instance.signal_what_is_left, signal.SIGKILL)

    def _decide(self, instance: Instance) -> None:
        """The current process exited on its own: restart it, or end for good."""
        code = instance.returncode
        self.returncode = code
        uptime = self._loop.time() - instance.started if instance.pid is not None else 0.0
        if self.restart == "never" or (self.restart == "on-failure" and self.succeeded()):
            log.info(
                "process %r exited with %s after %.2f s; not restarted (restart=%r)",
                self.name,
                describe(code),
                uptime,
                self.restart,
            )
            self._set_state(ProcessState.EXITED)
            return
        delay = self._backoff.exited(self._loop.time(), instance.counted, uptime)
        if delay is None:
            self._fail(code)
            return
        # The state first, then the line: what the log says has happened (readiness
        # taken back, watchers told) by the time anyone reads it.
        self._set_state(ProcessState.BACKING_OFF)
        log.info(
            "process %r exited with %s after %.2f s; restart %d in %.2f s",
            self.name,
            describe(code),
            uptime,
            self.restarts + 1,
            delay,
        )
        self._timer = self._loop.call_later(delay, self._restart)

    def _restart(self) -> None:
        self.restarts += 1
        self._spawn()

    def _fail(self, code: int | None) -> None:
        o = self.options
        if o.output == "log":
            lines = "\n".join(f"    {line}" for line in self._tail) or "    (no output)"
            lines = f" Its last lines:\n{lines}"
        else:
            lines = " Its own lines are in the output above." if o.output == "inherit" else ""
        fix = "Fix the program, or raise max_restarts or min_uptime." if o.tunable else "Fix it."
        b = self._backoff
        if self.blocks_readiness:  # before the line: what it says has happened
            readiness.block(f"process {self.name}", f"failed after {self.restarts} restart(s)")
        log.error(
            "process %r failed: it exited %d times within %g s %s, the last time with %s;"
            " not restarted. %s%s",
            self.name,
            b.early_exits(),
            b.window,
            f"before running {self.min_uptime:g} s",
            describe(code),
            fix,
            lines,
        )
        self._set_state(ProcessState.FAILED)
        if self.essential:
            self._sup._essential_ended(self)

    def _finished(self) -> None:
        for handle in (self._timer, self._kill_timer):
            if handle is not None:
                handle.cancel()
        self._timer = self._kill_timer = None
        if not self._done.done():
            self._done.set_result(self.returncode)
        for dependant in self.dependants:
            dependant._dependency_ended(self)
        if (
            self.essential
            and self._state == ProcessState.EXITED
            and not self._stopping
            and not self._sup._closing
        ):
            self._sup._essential_ended(self)
        self._sup._process_finished(self)

    # -- stopping -----------------------------------------------------------------------

    def _begin_stop(self, limit: tuple[float, str] | None) -> None:
        """Stop for good: the stop signal now, SIGKILL at ``limit`` (loop time, why)."""
        if self._state in FINAL:
            return
        if self._stopping:
            if limit is not None and (self._kill_at is None or limit[0] < self._kill_at):
                self._arm_kill(limit)  # a shutdown's deadline can come before the own timeout
            return
        self._stopping = True
        self._stop_started = self._loop.time()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._candidate_settled(False)
        if not self._instances:  # backing off, or waiting for a dependency
            self._set_state(ProcessState.EXITED)
            return
        self._set_state(ProcessState.STOPPING)
        self._groups = list(self._instances)
        for instance in self._groups:
            instance.track_group()
            instance.on_group_change = self._maybe_stopped
            instance.send(self.stop_signal)
        if limit is not None:
            self._arm_kill(limit)
        self._maybe_stopped()

    def _arm_kill(self, limit: tuple[float, str]) -> None:
        if self._kill_timer is not None:
            self._kill_timer.cancel()
        self._kill_at, self._kill_why = limit
        self._kill_timer = self._loop.call_at(limit[0], self._kill)

    def _kill(self) -> None:
        self._kill_timer = None
        killed = [i for i in self._groups if i.group_alive()]
        for instance in killed:
            instance.killed = instance.send(signal.SIGKILL) or instance.killed
        if killed:
            self.killed = True
            waited = self._loop.time() - self._stop_started
            log.error(
                "process %r still running %.2f s after %s (%s); sent SIGKILL to its group",
                self.name,
                waited,
                self.stop_signal.name,
                self._kill_why,
            )
        self._maybe_stopped()

    def _maybe_stopped(self) -> None:
        """While stopping: final once every process of ours and its group are gone."""
        if not self._stopping or self._state in FINAL:
            return
        if self._instances or any(i.group_alive() for i in self._groups):
            return  # its children in the group may outlive it: until the kill timer
        self._set_state(ProcessState.EXITED)

    def _before_up(self) -> str:
        if self.options.ready == "notify":
            return "before it said READY=1"
        return f"before running {self.min_uptime:g} s"

    def succeeded(self) -> bool:
        """Its last run exited with one of its ``success_codes``."""
        return self.returncode in self.options.success_codes

    def _clean_stop(self) -> bool:
        """Exited with a success code, or died of its own stop signal (or never ran)."""
        code = self.returncode
        return code is None or self.succeeded() or code == -self.stop_signal

    # -- rolling restart ----------------------------------------------------------------

    async def _replace(self) -> None:
        """Start a new process, wait until it counts as started, then stop the old one."""
        if self._state == ProcessState.STARTING and not self._stopping:
            async for state in self.states():  # still starting: replace it once it counts
                if state != ProcessState.STARTING:
                    break
        old = self._current
        if self._state != ProcessState.RUNNING or old is None or self._stopping:
            log.info("rolling restart: process %r is %s; skipped", self.name, self._state.value)
            return
        new = self._new_instance()
        try:
            new.spawn(self._loop)
        except OSError as exc:
            log.error("rolling restart: a new %r could not be started: %s", self.name, exc)
            return
        self._instances.add(new)
        log.info("rolling restart: process %r started again, pid %d", self.name, new.pid)
        self._candidate = self._loop.create_future()
        self._candidate_instance = new
        if self.options.ready == "uptime":
            self._loop.call_later(self.min_uptime, self._candidate_up, new)
        try:
            up = await self._candidate
        finally:
            self._candidate = self._candidate_instance = None
        if self._stopping:
            return  # the shutdown stops both
        if not up:
            log.error(
                "rolling restart: the new %r exited with %s %s; the old one (pid %s) keeps running",
                self.name,
                describe(new.returncode),
                self._before_up(),
                old.pid,
            )
            return
        if old is not self._current or not old.alive:
            # The old one exited meanwhile and its restart is under way: keep that one.
            log.info("rolling restart: process %r was restarted meanwhile", self.name)
            new.send(self.stop_signal)
            self._loop.call_later(
                self.stop_timeout or DEFAULT_STOP_TIMEOUT, new.send, signal.SIGKILL
            )
            return
        self._current = new
        gone: asyncio.Future[None] = self._loop.create_future()

        def old_exited(instance: Instance) -> None:
            self._instance_exited(instance)
            if not gone.done():
                gone.set_result(None)

        old.on_exit = old_exited
        old.send(self.stop_signal)
        timeout = self.stop_timeout or DEFAULT_STOP_TIMEOUT
        kill = self._loop.call_later(timeout, old.send, signal.SIGKILL)
        try:
            await gone
        finally:
            kill.cancel()
        log.info(
            "rolling restart: old %r (pid %s) exited with %s",
            self.name,
            old.pid,
            describe(old.returncode),
        )

    def _candidate_up(self, instance: Instance) -> None:
        if instance is self._candidate_instance and instance.alive:
            instance.counted = True
            self._candidate_settled(True)

    def _candidate_settled(self, up: bool) -> None:
        if self._candidate is not None and not self._candidate.done():
            self._candidate.set_result(up)
