"""One run of a supervised program: spawned in its own process group, watched
through a pidfd, reaped by pid by us and nobody else.

Why not asyncio's subprocesses: their exit is reported through the loop's child
watcher (a thread per child on 3.10-3.11, libuv's SIGCHLD handler under uvloop),
and their cancellation-driven waits are tasks, which phase 3 of the shutdown
cancels. Here everything is a loop callback: the pidfd becomes readable when the
process exits (before and without reaping), ``Popen.poll()`` then reaps exactly
that pid. Nothing ever calls ``waitpid(-1)``, so the statuses of the app's other
children stay exact, also when graceful is PID 1's child.

Each process is the leader of a new session and process group (``setsid``): its
stop signal and the SIGKILL at the deadline go to the group and reach the
children it started, and a Ctrl-C at the app's terminal reaches only the app,
which then stops its processes in order.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
from collections import deque
from collections.abc import Callable, Mapping, Sequence

from .._pid1.children import descendant_pids
from .output import Stream, pump

_HAVE_PIDFD = hasattr(os, "pidfd_open")
_POLL_INTERVAL = 0.05  # only without pidfds
OUTPUT_GRACE = 0.5
"""After a process exits, how long to wait for the end of its output (a child of
it may hold the pipe) before its exit is acted on."""


# -- the parent's death ----------------------------------------------------------------
#
# A process we started must not outlive us: after a SIGKILL of the app (the OOM
# killer, `timeout -s KILL`, systemd's KillMode=process) workers would otherwise run
# on, reparented, still holding the shared port. The kernel's parent-death signal
# (prctl PR_SET_PDEATHSIG) is set in the child between fork and exec; it survives
# the exec. It costs the fork: Popen can no longer use vfork, which copies no page
# tables, so a spawn takes about 1-2 ms instead of 0.15 ms from a 30 MB app
# (8 ms from a 200 MB one), measured on 2 cores; small against any program's own
# start. The signal is sent when the *thread* that forked ends: spawns happen on
# the loop's thread, which outlives its supervisors. What the program's own
# children do is theirs: the init (PID 1 or --init on) reaps and kills those.

_PR_SET_PDEATHSIG = 1
_prctl: Callable[..., int] | None = None


def _dies_with_us(sig: int) -> Callable[[], None]:
    """The ``preexec_fn`` that sets the parent-death signal in the child."""
    global _prctl
    if _prctl is None:
        import ctypes

        _prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here, not in the child
    prctl, parent = _prctl, os.getpid()

    def in_the_child() -> None:
        prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
        if os.getppid() != parent:  # we died before the prctl: as if after it
            os.kill(os.getpid(), sig)

    return in_the_child


class Instance:
    """One spawned process of a managed program."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None,
        cwd: str | None,
        output: str,
        label: str,
        logger: logging.Logger,
        tail: deque[str],
        pass_fds: Sequence[int],
        death_signal: int,
        on_exit: Callable[[Instance], None],
    ) -> None:
        self.argv, self.env, self.cwd = list(argv), env, cwd
        self.output, self.label, self.logger, self.tail = output, label, logger, tail
        self.pass_fds = tuple(pass_fds)
        self.death_signal = death_signal
        self.on_exit = on_exit
        self.popen: subprocess.Popen[bytes] | None = None
        self.pid: int | None = None
        self.started = 0.0
        self.returncode: int | None = None
        self.counted = False
        """It ran for ``min_uptime`` (set by the owner)."""
        self.ready = False
        """It said READY=1 (``ready="notify"``; set by the owner)."""
        self.killed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pidfd: int | None = None
        self._open_streams = 0
        self._grace_handle: asyncio.TimerHandle | None = None
        self._members: dict[int, int] = {}  # pid -> pidfd, the rest of its group
        self.on_group_change: Callable[[], None] = _nothing

    @property
    def alive(self) -> bool:
        return self.pid is not None and self.returncode is None

    def spawn(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the process; raises OSError when it cannot be executed."""
        self._loop = loop
        stdout: int | None = None
        stderr: int | None = None
        pipes: list[tuple[int, int]] = []  # (read end, write end) for stdout, stderr
        if self.output == "discard":
            stdout = stderr = subprocess.DEVNULL
        elif self.output == "log":
            pipes = [os.pipe(), os.pipe()]
            stdout, stderr = pipes[0][1], pipes[1][1]
        try:
            self.popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                env=self.env,
                cwd=self.cwd,
                pass_fds=self.pass_fds,
                start_new_session=True,
                preexec_fn=_dies_with_us(self.death_signal),
            )
        except BaseException:
            for r, w in pipes:
                os.close(r)
                os.close(w)
            raise
        self.pid = self.popen.pid
        self.started = loop.time()
        for (r, w), level in zip(pipes, (logging.INFO, logging.WARNING), strict=False):
            os.close(w)
            self._open_streams += 1
            pump().add(Stream(r, self.label, self.logger, level, self.tail, self._eof))  # out, err
        if _HAVE_PIDFD:
            try:
                self._pidfd = os.pidfd_open(self.pid)
            except OSError:  # gone already (a zombie still has a pidfd; this is rare)
                self._pidfd = None
        if self._pidfd is not None:
            loop.add_reader(self._pidfd, self._pidfd_readable)
        else:
            loop.call_later(_POLL_INTERVAL, self._poll)

    # -- signals ------------------------------------------------------------------------

    def send(self, sig: int, *, group: bool = True) -> bool:
        """Send ``sig`` to the process group (or only the process); False if nothing got it."""
        pid = self.pid
        if pid is None or not self.group_alive():  # the number may name another group by now
            return False
        try:
            if group:
                os.killpg(pid, sig)  # the leader's pid is the group's id
            elif self.returncode is None:
                os.kill(pid, sig)
            else:
                return False
        except (ProcessLookupError, PermissionError):
            return False
        return True

    def signal_what_is_left(self, sig: int) -> bool:
        """After the process ended: send ``sig`` to what is left of its group (children
        it started and left behind); False if nothing is. The group's id stays taken
        while any member lives, so it cannot name another group meanwhile."""
        if self.pid is None or self.alive:
            return False
        try:
            os.killpg(self.pid, sig)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    def track_group(self) -> None:
        """Watch the processes of its group other than itself (the children it started),
        so that a stop can wait for them too.

        Through pidfds: a member that exits counts as gone at once, even while it
        waits, a zombie, for the init to reap it (``killpg(pgid, 0)`` would still
        find it, for as long as that takes).
        """
        if self.pid is None or self.returncode is not None or not _HAVE_PIDFD:
            return
        assert self._loop is not None
        try:
            found = descendant_pids(self.pid)
        except OSError:  # exited meanwhile
            return
        for pid in found:
            if pid in self._members:
                continue
            try:
                if os.getpgid(pid) != self.pid:
                    continue  # it made a group of its own: not ours to wait for
                fd = os.pidfd_open(pid)
            except OSError:
                continue
            self._members[pid] = fd
            self._loop.add_reader(fd, self._member_exited, pid)

    def _member_exited(self, pid: int) -> None:
        assert self._loop is not None
        fd = self._members.pop(pid)
        self._loop.remove_reader(fd)
        os.close(fd)
        self.on_group_change()

    def group_alive(self) -> bool:
        """Whether it, or a member of its group that ``track_group()`` found, is alive."""
        return self.alive or bool(self._members)

    # -- exit ---------------------------------------------------------------------------

    def _pidfd_readable(self) -> None:
        assert self._loop is not None and self._pidfd is not None
        self._loop.remove_reader(self._pidfd)
        os.close(self._pidfd)
        self._pidfd = None
        self._reap()

    def _poll(self) -> None:
        assert self._loop is not None and self.popen is not None
        if self.popen.poll() is None:
            self._loop.call_later(_POLL_INTERVAL, self._poll)
            return
        self._reap()

    def _reap(self) -> None:
        assert self._loop is not None and self.popen is not None
        code = self.popen.poll()  # waitpid(our pid): the status is ours alone
        if code is None:  # readable but not reaped: cannot happen; keep watching
            self._loop.call_later(_POLL_INTERVAL, self._poll)
            return
        self.returncode = code
        if self._open_streams:
            self._grace_handle = self._loop.call_later(OUTPUT_GRACE, self._report)
        else:
            self._report()

    def _eof(self) -> None:
        """Called by the output thread when one of our pipes is closed."""
        loop = self._loop
        if loop is None:
            return
        try:
            loop.call_soon_threadsafe(self._stream_closed)
        except RuntimeError:  # the loop is closed: nobody waits any more
            pass

    def _stream_closed(self) -> None:
        self._open_streams -= 1
        if self._open_streams == 0 and self._grace_handle is not None:
            self._grace_handle.cancel()
            self._report()

    def _report(self) -> None:
        self._grace_handle = None
        callback, self.on_exit = self.on_exit, _ignore
        callback(self)


def _ignore(instance: Instance) -> None:
    pass


def _nothing() -> None:
    pass


def describe(code: int | None) -> str:
    """An exit status as people read it: ``0``, ``1``, ``SIGTERM``."""
    if code is None:
        return "not started"
    if code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal {-code}"
    return str(code)
