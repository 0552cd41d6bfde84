"""The init, as a real PID 1 (``unshare --pid --fork --mount-proc``), as a subreaper,
and in exec mode."""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import graceful

from .conftest import APPS, App, Launcher, gone, poll_until, proc_stat, stop

# --kill-child: if a test kills unshare, the whole namespace goes with it.
UNSHARE = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"]


@pytest.fixture(scope="session", autouse=True)
def unshare_works() -> None:
    """These tests need a real PID namespace; say so plainly if it cannot be made."""
    try:
        result = subprocess.run([*UNSHARE, "true"], capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        pytest.fail("unshare (util-linux) is not installed: apt-get install util-linux")
    if result.returncode != 0:
        pytest.fail(
            f"unshare --pid --fork --mount-proc failed ({result.stderr.strip()}): these tests"
            " need root or user namespaces; run them as root"
        )


def pid1(launch: Launcher, *args: str, env: dict[str, str] | None = None) -> App:
    return launch.command([*UNSHARE, sys.executable, "-m", "graceful", *args], env=env)


def init_pid(app: App) -> int:
    """The host pid of the namespace's PID 1 (the child of unshare)."""
    children = Path(f"/proc/{app.proc.pid}/task/{app.proc.pid}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


def children_of(pid: int) -> list[tuple[int, str]]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                state, ppid = proc_stat(int(entry))
            except (FileNotFoundError, ProcessLookupError):
                continue
            if ppid == pid:
                found.append((int(entry), state))
    return found


def zombies_of(pid: int) -> int:
    return sum(1 for _, state in children_of(pid) if state == "Z")


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


# -- as PID 1 ---------------------------------------------------------------------------


# graceful-init (init.c) is built here: the tests run against it. A few run against the
# Python init too, the fallback where no C compiler was found at install.
PYTHON_INIT = {"GRACEFUL_PYTHON_INIT": "1"}
BOTH_INITS = pytest.mark.parametrize("init_env", [None, PYTHON_INIT], ids=["compiled", "python"])


def test_the_compiled_init_replaces_the_interpreter(launch: Launcher) -> None:
    program = Path(graceful.__file__).parent / "_pid1" / "graceful-init"
    assert program.exists(), "graceful-init was not built: the install found no C compiler (cc)"
    args = ["--grace", "2", "--log-format", "json", "--log-level", "DEBUG", "pid1_app:main"]
    app = pid1(launch, *args, env={"GRACEFUL_PYTHON_INIT": "maybe"})  # not a yes: a warning
    app.expect("ready")
    init = init_pid(app)
    assert os.readlink(f"/proc/{init}/exe").endswith("/graceful/_pid1/graceful-init")
    assert rss_kb(init) < 4096, rss_kb(init)  # the Python init: about 10 MB
    assert stop_pid1(app) == 0
    assert "hook saved" in app.events()
    # Its lines are graceful's own, here JSON with the same fields
    lines = [json.loads(line) for line in app.stderr.splitlines()]
    (last,) = [line for line in lines if line["message"] == "init: exiting with code 0"]
    assert list(last) == ["time", "level", "logger", "message", "pid"], last
    assert last["level"] == "DEBUG" and last["pid"] == 1 and last["time"].endswith("Z")
    assert any("GRACEFUL_PYTHON_INIT='maybe' is not 1 or 0" in line["message"] for line in lines)


@pytest.mark.parametrize(
    ("sig", "init_env"),
    [(signal.SIGTERM, None), (signal.SIGINT, None), (signal.SIGTERM, PYTHON_INIT)],
    ids=["SIGTERM", "SIGINT", "SIGTERM-python-init"],
)
def test_stop_signal_to_pid1_reaches_the_app(
    launch: Launcher, sig: signal.Signals, init_env: dict[str, str] | None
) -> None:
    app = pid1(launch, "--grace", "2", "--log-level", "DEBUG", "pid1_app:main", env=init_env)
    app.expect("ready")
    assert "app pid 2" in app.events()  # the init is PID 1, the app its first child
    assert stop_pid1(app, sig) == 0
    assert "init: exiting with code 0" in app.stderr
    assert app.elapsed() < 2
    assert "hook saved" in app.events()
    assert f"{sig.name} received: shutting down" in app.stderr
    assert "init: PID 1, app is pid 2" in app.stderr


def test_sigterm_to_pid1_while_the_app_imports(launch: Launcher) -> None:
    app = pid1(launch, "--grace", "2", "slow_import:main")
    app.expect("importing")
    os.kill(init_pid(app), signal.SIGTERM)
    app.signalled_at = time.monotonic()
    assert app.wait() == 0
    # The import waits until graceful has recorded the forwarded signal (a handshake),
    # so main can never start first; main never started, so only always=True hooks run.
    assert app.events() == ["import finished", "hook cleanup (always)"]


def test_other_signals_reach_the_apps_own_handlers(launch: Launcher) -> None:
    app = pid1(launch, "--grace", "2", "pid1_app:main")
    app.expect("ready")
    init = init_pid(app)
    for sig in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGHUP):
        os.kill(init, sig)
        app.expect(f"got {sig.name}")
    assert stop_pid1(app) == 0


def stop_pid1(app: App, sig: int = signal.SIGTERM) -> int:
    """Signal the namespace's PID 1; ``app.elapsed()`` is then the time to PID 1's own
    exit, seen through a pidfd: what the grace bounds (unshare's teardown after it is
    not graceful's, and on a loaded machine it adds tens of milliseconds)."""
    init = init_pid(app)
    fd = os.pidfd_open(init)
    try:
        os.kill(init, sig)
        app.signalled_at = time.monotonic()
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        poller.poll(30_000)
        died = time.monotonic()
    finally:
        os.close(fd)
    code = app.wait()
    app.exited_at = died
    return code


def test_2000_orphans_are_reaped_and_the_init_does_not_grow(launch: Launcher) -> None:
    app = pid1(launch, "--grace", "2", "pid1_app:orphans", env={"ORPHANS": "2000"})
    app.expect("ready 2000", timeout=120)
    init = init_pid(app)
    (the_app,) = [pid for pid, _ in children_of(init) if proc_stat(pid)[0] != "Z" and _is_app(pid)]
    orphans = [pid for pid, _ in children_of(init) if pid != the_app]
    assert len(orphans) == 2000  # all re-parented to our PID 1 (host pids seen from here)
    before = rss_kb(init)
    os.kill(init, signal.SIGUSR1)  # forwarded to the app: release the orphans
    app.expect("released")
    assert poll_until(lambda: [pid for pid, _ in children_of(init)] == [the_app], 30)
    assert zombies_of(init) == 0
    after = rss_kb(init)
    assert after - before <= 64, (before, after)  # not per zombie: 2000 would be far more
    assert stop_pid1(app) == 0


def _is_app(pid: int) -> bool:
    return b"pid1_app:orphans" in Path(f"/proc/{pid}/cmdline").read_bytes()


def test_exit_codes_stay_exact_under_orphan_churn(launch: Launcher) -> None:
    app = pid1(launch, "--grace", "2", "pid1_app:exit_codes", env={"RUNS": "200"})
    assert app.wait(timeout=120) == 0, app.stderr
    assert "sync 200/200 [7]" in app.events()
    assert "async 200/200 [9]" in app.events()


def test_child_ignoring_sigterm_cannot_hold_the_container(launch: Launcher) -> None:
    app = pid1(launch, "--grace", "2", "children:main", env={"CHILD_MODES": "ignores"})
    app.expect("ready")
    assert stop_pid1(app) == 1
    assert app.elapsed() < 2
    assert "children terminated 1, killed 1" in app.stderr


@BOTH_INITS
def test_leftover_process_gets_sigterm_before_sigkill(
    launch: Launcher, init_env: dict[str, str] | None
) -> None:
    app = pid1(launch, "--grace", "1.5", "pid1_app:leaves_one_behind", env=init_env)
    assert app.wait() == 0
    assert app.events() == ["leftover started", "hook saved", "leftover got SIGTERM"]
    assert "1 process(es) left, sent SIGTERM" in app.stderr
    assert "1 process(es) still running at the deadline; sent SIGKILL" in app.stderr


# -- as a subreaper -----------------------------------------------------------------------


def test_subreaper_reaps_the_apps_orphans(launch: Launcher) -> None:
    app = launch.graceful("--init", "on", "--grace", "2", "pid1_app:orphans", env={"ORPHANS": "50"})
    app.expect("ready 50")
    init = app.proc.pid  # not PID 1 here: the graceful process itself is the init
    orphans = [int(p) for p in app.events()[0].split()[1:]]  # same pid namespace as ours
    assert {proc_stat(p)[1] for p in orphans} == {init}
    os.kill(init, signal.SIGUSR1)
    app.expect("released")
    assert poll_until(lambda: all(not Path(f"/proc/{p}").exists() for p in orphans), 30)
    assert zombies_of(init) == 0
    assert stop(app) == 0


@pytest.mark.parametrize("what", ["app", "command"])
def test_when_the_subreaper_init_is_killed_the_app_goes_with_it(
    launch: Launcher, what: str
) -> None:
    if what == "app":
        app = launch.graceful("--init", "on", "--grace", "3", "idle:main")
    else:
        app = launch.graceful("--init", "on", "--", sys.executable, "-c", TRAPS_TERM)
    app.expect("ready")
    init = app.proc.pid
    child = int(Path(f"/proc/{init}/task/{init}/children").read_text().split()[0])
    app.proc.send_signal(signal.SIGKILL)  # the OOM killer, timeout -s KILL
    app.wait()
    assert poll_until(lambda: gone(child), 20), f"pid {child} outlived its init"
    if what == "app":  # it was told with SIGTERM: its sequence and hooks ran
        assert "hook registered_first" in app.events()


def test_ctrl_c_at_a_terminal_is_seen_once(launch: Launcher, tmp_path: Path) -> None:
    """The terminal sends SIGINT to its foreground group: the app's, not the init's."""
    setsid = shutil.which("setsid")
    assert setsid is not None, "setsid (util-linux) is needed to give the test a terminal"
    master, slave = pty.openpty()
    try:
        argv = [setsid, "-c", sys.executable, "-m", "graceful", "--init", "on", "--grace", "10"]
        proc = subprocess.Popen(
            [*argv, "tty_app:main"],
            cwd=APPS,
            env=launch.env(),
            stdin=slave,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        os.close(slave)
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
        os.write(master, b"\x03")  # Ctrl-C
        assert proc.stdout.readline() == "hook started\n"
        os.write(master, b"done\n")
        stdout, stderr = proc.communicate(timeout=20)
        assert proc.returncode == 0, stderr
        assert "second SIGINT" not in stderr
        assert stderr.count("SIGINT received") == 1
    finally:
        os.close(master)


# -- exec mode ----------------------------------------------------------------------------


def exec_mode(*command: str, grace: str = "2") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "graceful", "--grace", grace, "--", *command],
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.parametrize("code", [0, 1, 5, 255])
def test_exec_mode_passes_exit_codes_through(code: int) -> None:
    assert exec_mode("sh", "-c", f"exit {code}").returncode == code


def test_exec_mode_command_killed_by_a_signal_is_128_plus_it() -> None:
    assert exec_mode("sh", "-c", "kill -TERM $$").returncode == 143


def test_exec_mode_not_found_is_127() -> None:
    result = exec_mode("graceful-no-such-command")
    assert result.returncode == 127
    assert result.stderr.strip() == (
        "graceful: error: command 'graceful-no-such-command' not found; check the name and PATH"
    )


def test_exec_mode_not_executable_is_126(tmp_path: Path) -> None:
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    result = exec_mode(str(script))
    assert result.returncode == 126
    assert "not executable (Permission denied); check its mode" in result.stderr


TRAPS_TERM = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, lambda *a: (print('got SIGTERM', flush=True), sys.exit(3)))\n"
    "print('ready', flush=True)\n"
    "time.sleep(1000)\n"
)


def test_exec_mode_forwards_sigterm(launch: Launcher) -> None:
    app = launch.graceful("--", sys.executable, "-c", TRAPS_TERM)
    app.expect("ready")
    assert stop(app) == 3
    app.expect("got SIGTERM")


@BOTH_INITS
def test_exec_mode_as_pid1_kills_a_command_that_ignores_sigterm(
    launch: Launcher, init_env: dict[str, str] | None
) -> None:
    ignores = TRAPS_TERM.replace("sys.exit(3)", "None")
    app = pid1(launch, "--grace", "1.5", "--", sys.executable, "-c", ignores, env=init_env)
    app.expect("ready")
    assert stop_pid1(app) == 128 + signal.SIGKILL
    assert app.elapsed() < 1.5
    app.expect("got SIGTERM")
    assert "outlived the grace period; sending SIGKILL" in app.stderr


def test_without_pid1_duties_the_init_stays_off_and_says_so(launch: Launcher) -> None:
    app = launch.graceful("--log-level", "DEBUG", "--grace", "2", "idle:returns_seven")
    assert app.wait() == 7
    assert "init off: not PID 1 (--init on adds a subreaper)" in app.stderr
    app = launch.graceful("--log-level", "DEBUG", "--init", "off", "idle:returns_seven")
    assert app.wait() == 7
    assert "init off: --init off" in app.stderr
    app = launch.graceful(
        "--log-level", "DEBUG", "idle:returns_seven", env={"GRACEFUL_INIT": "off"}
    )
    assert app.wait() == 7
    assert "init off: GRACEFUL_INIT=off" in app.stderr
    first = app.stderr.splitlines()[0]
    assert first[:4].isdigit() and " graceful DEBUG: " in first  # timestamped like the rest


def test_exec_mode_a_directory_says_so() -> None:
    result = exec_mode("/tmp")
    assert result.returncode == 126
    assert result.stderr.strip() == "graceful: error: command '/tmp' is a directory, not a program"


def sig_blocked(status: str) -> int:
    (line,) = [x for x in status.splitlines() if x.startswith("SigBlk:")]
    return int(line.split()[1], 16)


BLOCK_THEN_EXEC = (
    "import os, signal, sys\n"
    "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGUSR1})\n"
    "os.execv(sys.executable, [sys.executable, '-m', 'graceful', '--', 'cat', '/proc/self/status'])\n"
)


def test_exec_mode_hands_on_the_signal_mask_it_was_given() -> None:
    # A parent that blocks signals on purpose (tini's sigconf test): the command gets
    # exactly that mask, not one with graceful's own blocking undone or left over.
    given = subprocess.run(
        [sys.executable, "-c", BLOCK_THEN_EXEC], capture_output=True, text=True, timeout=30
    )
    assert given.returncode == 0, given.stderr
    expected = (1 << (signal.SIGTERM - 1)) | (1 << (signal.SIGUSR1 - 1))
    assert sig_blocked(given.stdout) == expected
    plain = exec_mode("cat", "/proc/self/status")
    assert sig_blocked(plain.stdout) == 0


def test_init_is_not_stopped_by_terminal_signals(launch: Launcher) -> None:
    app = launch.graceful("--init", "on", "--", sys.executable, "-c", TRAPS_TERM)
    app.expect("ready")
    for sig in (signal.SIGTTIN, signal.SIGTTOU):
        app.send(sig)
    # Still forwarding: a SIGTERM right after reaches the command (a stopped init would not).
    assert stop(app) == 3
    app.expect("got SIGTERM")
    assert proc_stat_or_gone(app.proc.pid)


def proc_stat_or_gone(pid: int) -> bool:
    try:
        return proc_stat(pid)[0] != "T"
    except FileNotFoundError:
        return True
