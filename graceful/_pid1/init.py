"""The init: a small process that does PID 1's duties so the app does not have to.

Why a separate process: a reaper inside the app's own process steals exit statuses.
With a thread or a SIGCHLD handler calling ``waitpid(-1)``, ``subprocess.run``
reports 0 for a child that exited 7 (Popen turns ECHILD into 0), asyncio reports
255, and uvloop's ``Process.wait()`` never returns. Peeking with
``waitid(WNOWAIT)`` keeps finding the same first zombie. So when graceful is PID 1
(or ``--init on``) it splits in two before asyncio or the app is imported: this
init, which reaps every orphan, and the app, its child, which keeps its own
children and their exact statuses. tini, catatonit and dumb-init use the same split.

Why fork and not re-exec: the child goes straight on to the app without paying a
second interpreter start-up (about 10 ms plus the imports here). It is the parent
that execs, once the app is forked: into graceful-init (``init.c``), the same loop
compiled, when it was built at install; an interpreter costs the container about
4 MB more than that program, and a slower exit. The class below is that loop, and
the fallback wherever the program is missing.

How it waits: every forwarded signal and SIGCHLD are blocked before the fork and
taken with ``sigwaitinfo``/``sigtimedwait``; no handler runs, nothing is lost in
between (blocked signals stay pending). CPython 3.11.7/3.12.1/3.13.0 can return a
``struct_siginfo`` with a garbage ``si_signo`` from ``sigtimedwait`` after EINTR
past the timeout, so the number is checked against the set.

Terminal: the app gets its own process group and, if stdin is our terminal, the
foreground. A Ctrl-C then goes to the app's group only; sharing the group would
deliver it twice (once from the terminal, once forwarded), which is a forced exit.

Signals not forwarded: SIGKILL and SIGSTOP (cannot be caught), SIGCHLD (ours),
SIGTTIN and SIGTTOU (sent by the terminal to whoever touches it, meaningless to
forward) and the synchronous fault signals (SEGV, BUS, FPE, ILL, TRAP, SYS, ABRT),
which are about the process that raised them. SIGTSTP is forwarded, as tini does.
"""

from __future__ import annotations

import errno
import gc
import os
import signal
import sys
import time

from .. import _speak
from .._config import Config, say
from .._core.deadline import KILL_RESERVE, safety_margin
from .children import descendant_pids, kill_each

_NOT_FORWARDED = {
    signal.SIGKILL,
    signal.SIGSTOP,
    signal.SIGCHLD,
    signal.SIGTTIN,
    signal.SIGTTOU,
    signal.SIGSEGV,
    signal.SIGBUS,
    signal.SIGFPE,
    signal.SIGILL,
    signal.SIGTRAP,
    signal.SIGSYS,
    signal.SIGABRT,
}
FORWARDED = frozenset(s for s in signal.Signals if s < 32 and s not in _NOT_FORWARDED)
WAITED = FORWARDED | {signal.SIGCHLD}
_WAITED_NUMBERS = frozenset(int(s) for s in WAITED)
_STOP = (signal.SIGTERM, signal.SIGINT)
_PR_SET_CHILD_SUBREAPER = 36
_PR_SET_PDEATHSIG = 1

COMPILED = "graceful-init"
"""The compiled init (``init.c``), built beside this file when a C compiler was found."""
EXIT_NOT_FOUND = 127
EXIT_NOT_EXECUTABLE = 126


def start(
    config: Config,
    command: list[str] | None,
    blocked: frozenset[signal.Signals],
    inherited: frozenset[int] | None = None,
) -> None:
    """Fork the app (or ``command``) and become its init.

    Returns only in the app process. The init itself never returns: it exits
    with the app's exit code, or 128 + the signal that killed it. ``inherited`` is
    the signal mask graceful was started with: a ``command`` gets exactly that.
    """
    pid1 = os.getpid() == 1
    if not pid1:
        _become_subreaper()
    previous: set[int] | set[signal.Signals] = signal.pthread_sigmask(signal.SIG_BLOCK, WAITED)
    tty = _foreground_tty()
    init = os.getpid()
    app = os.fork()
    if app == 0:
        if not pid1:
            _die_with(init, command is None)
        _enter_app(previous, tty, command, blocked, inherited)
        return
    # The terminal stops a background process that reads from it or (with stty
    # tostop) writes to it: blocked, SIGTTIN/SIGTTOU stay pending and harmless, and
    # the init's last lines reach the terminal after the app has exited.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTTIN, signal.SIGTTOU})
    duties = Init(app, config, pid1, exec_mode=command is not None)
    duties.become_compiled()  # returns only where graceful-init was not built
    gc.enable()  # off since the start (__main__); the Python init runs for as long as the app
    code = duties.run()
    # The init holds no data and registered nothing: skip the interpreter's
    # finalization, which costs ~7 ms here (most of the init's SIGTERM-to-exit).
    sys.stderr.flush()
    os._exit(code)


def _become_subreaper() -> None:
    import ctypes  # only here: the init as PID 1 needs none of it

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        _speak.say(
            "WARNING",
            f"could not become a child subreaper ({os.strerror(err)});"
            " orphans will go to the system's init instead",
        )


def _die_with(init: int, graceful_app: bool) -> None:
    """In the child of an init that is not PID 1: end when the init dies.

    As PID 1 the kernel kills the whole namespace with it; as a subreaper nothing
    would, and a SIGKILLed init (the OOM killer, ``timeout -s KILL``) left the app
    running, reparented, still restarting its children. A graceful app gets SIGTERM
    and runs its sequence, bounded by its own deadline; a command gets SIGKILL, as
    nothing bounds its stop.
    """
    import ctypes  # loaded already: _become_subreaper() used it before the fork

    sig = signal.SIGTERM if graceful_app else signal.SIGKILL
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0 and os.getppid() != init:
        os.kill(os.getpid(), sig)  # the init died before the prctl: pending until unblocked


def _foreground_tty() -> int | None:
    try:
        if os.isatty(0) and os.tcgetpgrp(0) == os.getpgrp():
            return 0
    except OSError:
        pass
    return None


def _enter_app(
    previous: set[int] | set[signal.Signals],
    tty: int | None,
    command: list[str] | None,
    blocked: frozenset[signal.Signals],
    inherited: frozenset[int] | None,
) -> None:
    """In the child: own process group, the terminal, the signal mask back; exec if asked."""
    os.setpgid(0, 0)
    if tty is not None:
        # tcsetpgrp from what is now a background group raises SIGTTOU unless it is blocked.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTTOU})
        try:
            os.tcsetpgrp(tty, os.getpgrp())
        except OSError:
            pass
    if command is None:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        return
    # Python ignores SIGPIPE and SIGXFSZ; a command expects the defaults (as subprocess does).
    for sig in (signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(sig, signal.SIG_DFL)
    # The mask graceful was started with, exactly (a parent may block SIGTERM on
    # purpose); without it known, the one before the fork minus what graceful blocked.
    mask = set(inherited) if inherited is not None else set(previous) - set(blocked)
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    try:
        os.execvp(command[0], command)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            code, fix = EXIT_NOT_FOUND, "not found; check the name and PATH"
        elif exc.errno == errno.EISDIR or (exc.errno == errno.EACCES and os.path.isdir(command[0])):
            code, fix = EXIT_NOT_EXECUTABLE, "is a directory, not a program"
        elif exc.errno in (errno.EACCES, errno.ENOEXEC):
            code, fix = EXIT_NOT_EXECUTABLE, f"not executable ({exc.strerror}); check its mode"
        else:
            code, fix = EXIT_NOT_EXECUTABLE, f"could not be run ({exc.strerror})"
        _speak.usage_error(f"command {command[0]!r} {fix}")
        os._exit(code)


class Init:
    """The wait-forward-reap loop, then the clean-up of what the app left behind."""

    def __init__(self, app: int, config: Config, pid1: bool, exec_mode: bool = False) -> None:
        self.app = app
        self.config = config
        self.pid1 = pid1
        margin = safety_margin(config.grace)
        # When to SIGKILL the app, and when to be gone, counted from the first stop
        # signal. graceful's own runtime ends its sequence at grace - margin and its
        # watchdog fires at grace - margin/2, so the init steps in only after that.
        # A command in exec mode has no watchdog: the init is the only one to enforce.
        self.kill_after = config.grace - (margin / 2 if exec_mode else margin / 4)
        self.exit_after = config.grace - (margin / 4 if exec_mode else margin / 8)
        self.kill_app_at: float | None = None  # set by the first SIGTERM/SIGINT
        self.exit_by: float | None = None
        self.app_status: int | None = None

    def become_compiled(self) -> None:
        """Replace this process with graceful-init (``init.c``), which runs the same loop
        without an interpreter: less memory for the container, a quicker exit. The app
        stays our child, the blocked and pending signals stay as they are. Returns only
        if the program is missing (not built: no C compiler at install) or cannot run,
        or ``GRACEFUL_PYTHON_INIT=1`` asks for this one."""
        self._debug(f"init: {'PID 1' if self.pid1 else 'subreaper'}, app is pid {self.app}")
        wanted = os.environ.get("GRACEFUL_PYTHON_INIT", "").strip().lower()
        if wanted in ("1", "true", "yes", "on"):
            return
        if wanted not in ("", "0", "false", "no", "off"):
            self._warn(
                f"GRACEFUL_PYTHON_INIT={wanted!r} is not 1 or 0; graceful-init runs"
                " (set GRACEFUL_PYTHON_INIT=1 for the Python init)"
            )
        program = os.path.join(os.path.dirname(os.path.abspath(__file__)), COMPILED)
        if not os.access(program, os.X_OK):
            return
        extra = ",".join(str(int(s)) for s in self.config.stop_signals) or "-"
        json = _speak.json_mode()
        # What follows the message in a JSON line (pid, process): json is loaded only then.
        tail = _speak.json_line(0, "", "", "").rsplit('"message": ""', 1)[1] if json else "}"
        argv = [program, str(self.app), str(int(self.pid1)), repr(self.kill_after)]
        argv += [repr(self.exit_after), extra, str(_speak.LEVELS.index(self.config.log_level))]
        argv += [str(int(json)), _speak.who(), tail]
        sys.stderr.flush()
        try:
            os.execv(program, argv)
        except OSError as exc:  # built for another machine, a noexec mount: carry on here
            self._debug(f"init: {COMPILED} could not run ({exc.strerror}); the Python init runs")

    def run(self) -> int:
        while self.app_status is None:
            info = self._wait(self.kill_app_at)
            if info is None:  # the deadline: the app's own watchdog did not end it
                self._kill_app()
            elif info == signal.SIGCHLD:
                self._reap()
            else:
                self._forward(info)
        code = _exit_code(self.app_status)
        self._stop_the_rest()
        self._debug(f"init: exiting with code {code}")
        return code

    def _wait(self, until: float | None) -> int | None:
        """The next signal taken, or None when ``until`` passed."""
        while True:
            info: signal.struct_siginfo | None
            if until is None:
                info = signal.sigwaitinfo(WAITED)
            else:
                left = until - time.monotonic()
                if left <= 0:
                    return None
                info = signal.sigtimedwait(WAITED, left)
            if info is None:
                return None
            if info.si_signo in _WAITED_NUMBERS:  # else the CPython garbage-siginfo bug
                return info.si_signo

    def _forward(self, signum: int) -> None:
        try:
            os.kill(self.app, signum)
        except ProcessLookupError:
            pass
        if (signum in _STOP or signum in self.config.stop_signals) and self.kill_app_at is None:
            now = time.monotonic()
            self.kill_app_at = now + self.kill_after
            self.exit_by = now + self.exit_after

    def _kill_app(self) -> None:
        self._log(f"init: the app (pid {self.app}) outlived the grace period; sending SIGKILL")
        try:
            os.kill(self.app, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.kill_app_at = None  # wait for its SIGCHLD now, without a timeout

    def _reap(self) -> bool:
        """Collect every zombie child; False once there is no child left at all."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return False
            if pid == 0:
                return True
            if pid == self.app:
                self.app_status = status

    def _stop_the_rest(self) -> None:
        """SIGTERM what the app left behind, wait within the window, SIGKILL the rest."""
        if not self._reap():
            return
        if self.exit_by is None:  # the app ended on its own: the window starts now
            self.exit_by = time.monotonic() + self.exit_after
        count = self._signal_all(signal.SIGTERM)
        self._log(f"init: the app has exited; {count} process(es) left, sent SIGTERM")
        if self._wait_for_none(self.exit_by - KILL_RESERVE):
            return
        count = self._signal_all(signal.SIGKILL)
        self._log(f"init: {count} process(es) still running at the deadline; sent SIGKILL")
        self._wait_for_none(self.exit_by)

    def _wait_for_none(self, until: float) -> bool:
        """Reap until no child is left (True) or ``until`` passed (False)."""
        while self._reap():
            signum = self._wait(until)
            if signum is None:
                return not self._reap()
            if signum != signal.SIGCHLD:
                self._signal_all(signum)
        return True

    def _signal_all(self, signum: int) -> int:
        pids = descendant_pids()
        if self.pid1:
            try:
                os.kill(-1, signum)  # every process of the namespace but ourselves
            except ProcessLookupError:
                return 0
            return len(pids)
        return kill_each(pids, signum)

    def _log(self, line: str) -> None:
        say(self.config, "INFO", line)

    def _debug(self, line: str) -> None:
        say(self.config, "DEBUG", line)

    def _warn(self, line: str) -> None:
        say(self.config, "WARNING", line)


def _exit_code(status: int) -> int:
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.waitstatus_to_exitcode(status)
