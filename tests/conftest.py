"""Fixtures for black-box tests: a real ``python -m graceful`` process, real signals.

Every wait is bounded and ordered by a handshake (a line the app prints), never by
a sleep. Each black-box scenario runs on both loops through the ``loop_name`` fixture.
"""

from __future__ import annotations

import datetime
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from graceful._pid1.children import descendant_pids

APPS = Path(__file__).parent / "apps"
LOOPS = ("asyncio", "uvloop")


@pytest.fixture
def own_hooks() -> Iterator[None]:
    """An empty hook registry for an in-process test; the hooks registered before (by
    modules imported at collection) are put back afterwards."""
    from graceful._core import hooks as _hooks

    before = _hooks.snapshot()
    _hooks.restore([])
    yield
    _hooks.restore(before)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now, below the kernel's ephemeral range: a port from
    that range can become a client connection's source port before the server under
    test binds it (the bind then fails); ports below it are never handed out so."""
    import random
    import socket

    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    for port in random.sample(range(max(1024, low - 12000), low), 200):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError(f"no free port below {low} in 200 tries")


@pytest.fixture
def port() -> int:
    """A free TCP port on 127.0.0.1 for the app under test to serve."""
    return free_port()


@pytest.fixture(params=LOOPS)
def loop_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class App:
    """A process started by a test, with its stdout lines as handshakes."""

    def __init__(self, argv: Sequence[str], env: dict[str, str], out: Path) -> None:
        self.out = out
        self.proc = subprocess.Popen(
            argv,
            cwd=APPS,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stderr: list[str] = []
        self._log_lines: queue.Queue[str | None] = queue.Queue()
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._readers = [
            threading.Thread(target=self._pump, args=(self.proc.stdout,), daemon=True),
            threading.Thread(target=self._collect, args=(self.proc.stderr,), daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        self.stdout: list[str] = []
        self.signalled_at: float | None = None
        self.exited_at = 0.0

    def _pump(self, stream: Iterator[str]) -> None:
        for line in stream:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def _collect(self, stream: Iterator[str]) -> None:
        for line in stream:
            self._stderr.append(line)
            self._log_lines.put(line.rstrip("\n"))
        self._log_lines.put(None)

    def expect(self, text: str, timeout: float = 20.0) -> None:
        """Wait until the app prints a line containing ``text``."""
        end = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, end - time.monotonic()))
            except queue.Empty:
                raise AssertionError(
                    f"no line {text!r} within {timeout} s; stdout so far: {self.stdout[-5:]}"
                    f"\n{self.tree()}\nstderr:\n{self.stderr}"
                ) from None
            if line is None:
                raise AssertionError(f"app exited before printing {text!r}; stderr:\n{self.stderr}")
            self.stdout.append(line)
            if text in line:
                return

    def expect_log(self, text: str, timeout: float = 20.0) -> str:
        """Wait until the app writes a stderr line containing ``text``; return the line.

        Each line is seen once: a later call looks only at lines written after it.
        """
        end = time.monotonic() + timeout
        while True:
            try:
                line = self._log_lines.get(timeout=max(0.0, end - time.monotonic()))
            except queue.Empty:
                raise AssertionError(
                    f"no stderr line {text!r} within {timeout} s; stderr:\n{self.stderr}"
                ) from None
            if line is None:
                raise AssertionError(f"app exited before logging {text!r}; stderr:\n{self.stderr}")
            if text in line:
                return line

    def stdout_all(self, timeout: float = 20.0) -> str:
        """Everything the app printed (after it exited)."""
        while True:
            try:
                line = self._lines.get(timeout=timeout)
            except queue.Empty:
                break
            if line is None:
                self._lines.put(None)
                break
            self.stdout.append(line)
        return "\n".join(self.stdout)

    def expect_stderr(self, text: str, timeout: float = 20.0) -> None:
        """Wait until the app writes ``text`` to stderr (e.g. a log line)."""
        if not poll_until(lambda: text in self.stderr, timeout):
            raise AssertionError(f"no {text!r} on stderr within {timeout} s:\n{self.stderr}")

    def send(self, sig: int) -> None:
        if self.signalled_at is None:
            self.signalled_at = time.monotonic()
        self.proc.send_signal(sig)

    def write(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text)
        self.proc.stdin.flush()

    def wait(self, timeout: float = 20.0) -> int:
        code = self.proc.wait(timeout)
        self.exited_at = time.monotonic()
        for reader in self._readers:
            reader.join(timeout)
        return code

    def elapsed(self) -> float:
        """Seconds from the first signal sent to the exit seen (after ``wait()``)."""
        assert self.signalled_at is not None
        return self.exited_at - self.signalled_at

    @property
    def stderr(self) -> str:
        return "".join(self._stderr)

    def events(self) -> list[str]:
        path = self.out / "events"
        return path.read_text().splitlines() if path.exists() else []

    def close(self) -> None:
        """Kill the app and what it started if they still run, and release its pipes.

        Supervised processes have sessions of their own: when a failed test's app is
        killed they would outlive it and keep its pipes open, and closing a pipe that a
        reader thread is blocked on waits for that thread's lock, for ever.
        """
        if self.proc.poll() is None:
            for pid in descendant_pids(self.proc.pid):
                _kill(pid)
            self.proc.kill()
        self.proc.wait(10)
        if not self._join_readers(5):
            holders = self._pipe_holders()
            for pid in holders:
                _kill(pid)
            if not self._join_readers(10):
                raise AssertionError(f"the app's pipes are still held open by pids {holders}")
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()

    def tree(self) -> str:
        """What the app and the processes it started are doing (for a failure's message)."""
        lines = []
        for pid in [self.proc.pid, *descendant_pids(self.proc.pid)]:
            try:
                proc = Path(f"/proc/{pid}")
                state = proc_stat(pid)[0]
                wchan = (proc / "wchan").read_text()
                argv = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()[:160]
            except (OSError, IndexError):
                continue
            lines.append(f"  pid {pid} state {state} waiting in {wchan or '-'}: {argv}")
        return "processes:\n" + ("\n".join(lines) or "  none left")

    def _join_readers(self, timeout: float) -> bool:
        """Wait (all of them within ``timeout``) for the reader threads to see EOF."""
        end = time.monotonic() + timeout
        for reader in self._readers:
            reader.join(max(0.0, end - time.monotonic()))
        return not any(reader.is_alive() for reader in self._readers)

    def _pipe_holders(self) -> list[int]:
        """The processes that still have the app's stdout or stderr pipe open."""
        pipes = set()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                pipes.add(f"pipe:[{os.fstat(stream.fileno()).st_ino}]")
        holders = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                if any(os.readlink(fd) in pipes for fd in (entry / "fd").iterdir()):
                    holders.append(int(entry.name))
            except OSError:  # gone meanwhile, or not ours to read
                continue
        return holders


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class Launcher:
    def __init__(self, tmp_path: Path, loop: str) -> None:
        self.tmp_path = tmp_path
        self.loop = loop
        self.apps: list[App] = []

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GRACEFUL_")}
        env.update(OUT=str(self.tmp_path), GRACEFUL_LOOP=self.loop, PYTHONUNBUFFERED="1")
        env.update(extra or {})
        return env

    def graceful(self, *args: str, env: dict[str, str] | None = None) -> App:
        """Start ``python -m graceful ARGS`` in tests/apps."""
        return self.command([sys.executable, "-m", "graceful", *args], env=env)

    def command(self, argv: Sequence[str], env: dict[str, str] | None = None) -> App:
        app = App(argv, self.env(env), self.tmp_path)
        self.apps.append(app)
        return app


@pytest.fixture
def launch(tmp_path: Path, loop_name: str) -> Iterator[Launcher]:
    launcher = Launcher(tmp_path, loop_name)
    yield launcher
    for app in launcher.apps:
        app.close()


def minimal_env() -> dict[str, str]:
    """An environment with nothing of the caller's but PATH, and PYTHONPATH when set (so
    ``make mutants`` reaches the code under test in its scratch copy)."""
    env = {"PATH": "/usr/bin:/bin"}
    if "PYTHONPATH" in os.environ:
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return env


def assert_usage_error(result: subprocess.CompletedProcess[str], message: str) -> None:
    """Bad usage: exit 2, nothing on stdout, one ``graceful: error:`` line naming it."""
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("graceful: error: ")
    assert message in lines[0]
    assert result.stdout == ""


def stop(app: App, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
    """Send ``sig``, wait for the exit, and note when it happened."""
    app.send(sig)
    return app.wait(timeout)


def proc_stat(pid: int) -> tuple[str, int]:
    """(state, ppid) of a process, read from /proc; FileNotFoundError once it is gone."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return fields[0], int(fields[1])


def gone(pid: int) -> bool:
    """True if the process no longer exists or is a zombie."""
    try:
        return proc_stat(pid)[0] == "Z"
    except FileNotFoundError:
        return True


def poll_until(condition: Callable[[], bool], timeout: float) -> bool:
    """Bounded wait for a state only /proc shows (no event exists to wait on)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


# graceful's log lines start with logging's asctime: "2026-12-02 13:20:01,123".
LOG_STAMP_RESOLUTION = 0.001


def logged_at(stderr: str, pattern: str) -> float:
    """The wall-clock time (seconds) of the first log line matching ``pattern``."""
    for line in stderr.splitlines():
        if re.search(pattern, line):
            stamp = datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
            return stamp.timestamp()
    raise AssertionError(f"no log line matches {pattern!r}:\n{stderr}")


def sigterm_train(app: App, pid: int) -> int:
    """SIGTERM every millisecond from the first until the process is gone."""
    done = threading.Event()

    def train() -> None:
        while not done.wait(0.001):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                return

    sender = threading.Thread(target=train, daemon=True)
    sender.start()
    try:
        return app.wait()
    finally:
        done.set()
        sender.join(5)
