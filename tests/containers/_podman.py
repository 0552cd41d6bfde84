"""podman for the container tests: the project's own configuration, bounded waits.

Every podman command runs with CONTAINERS_CONF and CONTAINERS_STORAGE_CONF pointing
at ``.containers/`` in this checkout, written by ``scripts/containers-setup``. When
podman cannot run, the tests fail with the reason and the fix; they are never
skipped.

Waits are ordered by what the container prints (``podman logs --follow``), each
bounded; /proc inside a container, which has no event to wait on, is polled with a
bound.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = ROOT / ".containers"
INSIDE = Path(__file__).parent / "inside"
BASE_IMAGE = os.environ.get("GRACEFUL_BASE_IMAGE", "localhost/graceful-base:bookworm")
IMAGE = "localhost/graceful-counter:test"
WEB_IMAGE = "localhost/graceful-web:test"
SETUP_HINT = "run scripts/containers-setup (make test-containers runs it first)"

# Both the image's and podman's own figures: USER in Dockerfile.example, the state
# volume, the health port.
APP_UID = 10001
STATE_DIR = "/var/lib/counter"
HEALTH_PORT = 8081
WEB_PORT = 8000


def environment() -> dict[str, str]:
    """The environment for podman, or a test failure that says how to set it up."""
    conf, storage = CONFIG_DIR / "containers.conf", CONFIG_DIR / "storage.conf"
    if shutil.which("podman") is None:
        pytest.fail(f"podman is not installed; {SETUP_HINT}", pytrace=False)
    if not conf.is_file() or not storage.is_file():
        pytest.fail(f"podman is not configured for this checkout ({conf} missing); {SETUP_HINT}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRACEFUL_")}
    env.update(CONTAINERS_CONF=str(conf), CONTAINERS_STORAGE_CONF=str(storage))
    return env


def podman(
    *args: str, timeout: float = 60.0, check: bool = True, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run one podman command (``input`` on its stdin); with ``check``, fail on a
    non-zero exit with its stderr."""
    try:
        result = subprocess.run(
            ["podman", *args],
            input=input,
            env=environment(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"podman {' '.join(args)} did not finish within {timeout} s", pytrace=False)
    if check and result.returncode != 0:
        pytest.fail(
            f"podman {' '.join(args)} exited with {result.returncode}:\n{quiet(result.stderr)}",
            pytrace=False,
        )
    return result


def quiet(stderr: str) -> str:
    """podman's stderr without the healthcheck timer errors it logs on a machine without
    systemd ("unable to get systemd connection to add healthchecks"), which are normal."""
    return "\n".join(line for line in stderr.splitlines() if "systemd connection" not in line)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def poll_until(condition: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    """Bounded wait for a state that only polling shows."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(interval)
    return condition()


class Logs:
    """The lines a container prints, stdout and stderr in the order it printed them."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        # One pipe for both streams: podman writes the log file's lines in order, so
        # a line of the app (stdout) and one of graceful (stderr) keep their order.
        self._proc = subprocess.Popen(
            ["podman", "logs", "--follow", name],
            env=environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self._proc.stdout is not None
        self._reader = threading.Thread(target=self._pump, args=(self._proc.stdout,), daemon=True)
        self._reader.start()
        self._ended = False

    def _pump(self, stream: Iterator[str]) -> None:
        for line in stream:
            if "systemd connection" not in line:
                self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def expect(self, text: str, timeout: float = 30.0, since: int = 0) -> str:
        """Wait until the container prints a line containing ``text``; return that line.

        Lines seen earlier (from index ``since`` of ``lines``) count too, so the order
        of ``expect`` calls need not follow the order of the output.
        """
        for seen in self.lines[since:]:
            if text in seen:
                return seen
        end = time.monotonic() + timeout
        while not self._ended:
            try:
                item = self._queue.get(timeout=max(0.0, end - time.monotonic()))
            except queue.Empty:
                pytest.fail(
                    f"{self.name} printed no line with {text!r} within {timeout} s:\n{self.text()}",
                    pytrace=False,
                )
            if item is None:
                self._ended = True
                break
            self.lines.append(item)
            if text in item:
                return item
        pytest.fail(f"{self.name} ended before printing {text!r}:\n{self.text()}", pytrace=False)

    def drain(self, timeout: float = 10.0) -> list[str]:
        """Every line, once the container has exited (the follower then ends)."""
        end = time.monotonic() + timeout
        while not self._ended:
            try:
                item = self._queue.get(timeout=max(0.0, end - time.monotonic()))
            except queue.Empty:
                break
            if item is None:
                self._ended = True
            else:
                self.lines.append(item)
        return self.lines

    def text(self) -> str:
        return "\n".join(self.lines[-40:])

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait(10)
        self._reader.join(10)
        if self._proc.stdout is not None:
            self._proc.stdout.close()


class Container:
    """A container started by a test; removed (with its anonymous volumes) at the end."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.logs = Logs(name)

    def exec(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return podman("exec", self.name, *argv, check=check)

    def run_inside(self, script: str, *args: str) -> subprocess.CompletedProcess[str]:
        """Run one of the scripts in ``inside/`` with the container's python."""
        source = (INSIDE / script).read_text()
        return podman("exec", self.name, "python", "-c", source, *args, check=False)

    def processes(self) -> list[dict[str, Any]]:
        result = self.run_inside("procs.py")
        assert result.returncode == 0, quiet(result.stderr)
        procs: list[dict[str, Any]] = json.loads(result.stdout)
        return procs

    def http_get(self, *paths: str, port: int = HEALTH_PORT) -> dict[str, tuple[int, str]]:
        """GET endpoints from inside the container, in one `podman exec`:
        {path: (status, body)}."""
        result = self.run_inside("http_get.py", str(port), *paths)
        assert result.returncode == 0, result.stdout + quiet(result.stderr)
        answers = {}
        for path, line in zip(paths, result.stdout.splitlines(), strict=True):
            status, _, body = line.partition(" ")
            answers[path] = (int(status), body)
        return answers

    def wait_for_http(self, port: int, path: str = "/", timeout: float = 30.0) -> None:
        """Wait until a server in the container answers (any HTTP status)."""
        result = self.run_inside("wait_for_http.py", str(port), path, str(timeout))
        assert result.returncode == 0, result.stdout + quiet(result.stderr) + self.logs.text()

    def inspect(self, template: str) -> str:
        return podman("inspect", self.name, "--format", template).stdout.strip()

    def stop(self, timeout: int = 10) -> tuple[float, int]:
        """``podman stop -t TIMEOUT``: (seconds it took, the container's exit code)."""
        started = time.monotonic()
        podman("stop", "-t", str(timeout), self.name, timeout=timeout + 30)
        elapsed = time.monotonic() - started
        return elapsed, int(self.inspect("{{.State.ExitCode}}"))

    def wait_exit(self, timeout: float = 30.0) -> int:
        """Wait for the container to exit by itself; its exit code."""
        podman("wait", self.name, timeout=timeout)
        return int(self.inspect("{{.State.ExitCode}}"))

    def remove(self) -> None:
        podman("rm", "--force", "--volumes", "--time", "0", self.name, check=False)
        self.logs.close()


def volume_path(volume: str) -> Path:
    """Where a named volume's files are on this host."""
    return Path(podman("volume", "inspect", volume, "--format", "{{.Mountpoint}}").stdout.strip())


def build_image(tag: str, dockerfile: str) -> None:
    """Build a Dockerfile of the project on the base image made by scripts/containers-setup.

    The flags are this machine's, not the Dockerfile's: pip in the build reaches the
    package index through the host's network, whose TLS goes through a CA the base
    image does not carry, so the host's certificates are mounted for the build only
    (Debian's pip reads /etc/ssl/certs/ca-certificates.crt). ``--env`` would not do:
    it also writes the variable into the image. ``--format docker`` keeps HEALTHCHECK
    (the OCI format drops it), ``--pull=never`` makes a missing base image fail at
    once instead of trying a registry.
    """
    if podman("image", "exists", BASE_IMAGE, check=False).returncode != 0:
        pytest.fail(f"base image {BASE_IMAGE} not found; {SETUP_HINT}", pytrace=False)
    args = ["build", "--file", str(ROOT / dockerfile), "--format", "docker"]
    args += ["--pull=never", "--network=host", "--build-arg", f"BASE_IMAGE={BASE_IMAGE}"]
    if Path("/etc/ssl/certs/ca-certificates.crt").is_file():
        args += ["--volume", "/etc/ssl/certs:/etc/ssl/certs:ro"]
    podman(*args, "--tag", tag, str(ROOT), timeout=600)
