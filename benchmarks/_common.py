"""Helpers shared by the benchmarks: child environment, line reads, formatting."""

from __future__ import annotations

import importlib.util
import os
import random
import select
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

APT_TIMEOUT = 600.0


class BenchError(Exception):
    """One run went wrong; the message says how."""


def child_env() -> dict[str, str]:
    # GRACEFUL_* settings of the caller must not change what graceful measures, and
    # every runner uses compiled bytecode, as an installed package does: with
    # PYTHONDONTWRITEBYTECODE set, each start would compile graceful's modules anew
    # (about 10 ms) while the baseline compiles only its small app.
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("GRACEFUL_") and k != "PYTHONDONTWRITEBYTECODE"
    }


def read_line(stream: IO[bytes], timeout: float) -> bytes:
    """Read up to the first newline from an unbuffered pipe, waiting at most ``timeout``."""
    fd = stream.fileno()
    end = time.monotonic() + timeout
    data = b""
    while b"\n" not in data:
        left = end - time.monotonic()
        if left <= 0:
            raise BenchError(f"no 'ready' line within {timeout:g} s (got {data!r})")
        readable, _, _ = select.select([fd], [], [], left)
        if not readable:
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            raise BenchError(f"stdout closed before 'ready' (got {data!r})")
        data += chunk
    return data.split(b"\n", 1)[0]


def start_ready(
    argv: list[str],
    cwd: Path,
    timeout: float,
    *,
    env: dict[str, str] | None = None,
    stderr: IO[bytes] | int = subprocess.DEVNULL,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` (stdout a pipe, unbuffered) and wait for its "ready" line; a child
    that does not say it in ``timeout`` seconds is killed and :class:`BenchError` raised."""
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env={**child_env(), **(env or {})},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=stderr,
        bufsize=0,
    )
    assert proc.stdout is not None
    try:
        line = read_line(proc.stdout, timeout)
        if line != b"ready":
            raise BenchError(f"expected 'ready', got {line!r}")
    except BenchError:
        proc.kill()
        proc.wait(timeout)
        proc.stdout.close()
        raise
    return proc


def cpu_ns(pid: int) -> int:
    """CPU time of every thread of ``pid`` so far, in ns (``/proc/PID/task/*/schedstat``;
    nanoseconds, where ``/proc/PID/stat`` counts 10 ms ticks)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except FileNotFoundError:  # a thread that just ended
            continue
    return total


def wakeups(pid: int) -> int:
    """Context switches of every thread of ``pid`` so far: each is a wake-up."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            status = (task / "status").read_text()
        except FileNotFoundError:
            continue
        for line in status.splitlines():
            if "ctxt_switches:" in line:
                total += int(line.split()[1])
    return total


def idle_cost(pid: int, seconds: float) -> tuple[float, float]:
    """(wake-ups per second, CPU as % of one core) of ``pid`` over ``seconds``."""
    w0, c0, t0 = wakeups(pid), cpu_ns(pid), time.perf_counter()
    time.sleep(seconds)  # the measured window itself
    w1, c1, t1 = wakeups(pid), cpu_ns(pid), time.perf_counter()
    return (w1 - w0) / (t1 - t0), (c1 - c0) / 1e9 / (t1 - t0) * 100


def fmt_ratio(value: float | None, ref: float | None, digits: int = 2) -> str:
    if value is None or ref is None or ref <= 0:
        return "n/a"
    return f"{value / ref:.{digits}f}x"


def spread(values: list[float]) -> str:
    """min / p10 / p90 / max, in the values' unit."""
    if len(values) < 2:
        return f"{values[0]:.1f}" if values else "n/a"
    q = statistics.quantiles(values, n=10, method="inclusive")
    return f"{min(values):.1f} / {q[0]:.1f} / {q[-1]:.1f} / {max(values):.1f}"


def apt_install(packages: list[str]) -> bool:
    """``apt-get install`` the Debian packages (after an ``apt-get update`` if the
    first try fails); True on success. Says what it runs on stderr."""
    if shutil.which("apt-get") is None:
        print("apt-get is not available", file=sys.stderr)
        return False
    install = ["apt-get", "install", "-y", "-o", "DPkg::Lock::Timeout=300", *packages]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for step in ([install], [["apt-get", "update"], install]):
        ok = True
        for cmd in step:
            print(f"running: {shlex.join(cmd)}", file=sys.stderr)
            try:
                done = subprocess.run(
                    cmd,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    timeout=APT_TIMEOUT,
                    check=False,
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                print(f"  failed: {exc}", file=sys.stderr)
                ok = False
                break
            if done.returncode != 0:
                tail = done.stderr.decode(errors="replace").strip()[-1000:]
                print(f"  exit code {done.returncode}: {tail}", file=sys.stderr)
                ok = False
                break
        if ok:
            return True
    return False


def available_loops(requested: str) -> list[str]:
    """The loops to measure for ``--loops`` (asyncio, uvloop or both); uvloop is left
    out with a word when it is not installed, unless it was asked for alone."""
    loops = ["asyncio", "uvloop"] if requested == "both" else [requested]
    if "uvloop" in loops and importlib.util.find_spec("uvloop") is None:
        if requested == "uvloop":
            sys.exit("uvloop is not installed; pip install uvloop, or use --loops asyncio")
        print("uvloop is not installed: measuring the asyncio loop only", file=sys.stderr)
        loops.remove("uvloop")
    return loops


def free_ports(count: int) -> list[int]:
    """``count`` free ports below the kernel's ephemeral range.

    A server's port is unbound until it starts (or while it restarts), and a port from the ephemeral
    range can meanwhile become the source port of a client's new connection; the
    server's bind would then fail (the client socket has no SO_REUSEADDR). Ports
    below the range are never handed out that way."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    candidates = list(range(max(1024, low - 12000), low))
    random.shuffle(candidates)
    socks: list[socket.socket] = []
    try:
        for port in candidates:
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                s.close()
                continue
            socks.append(s)
            if len(socks) == count:
                return [int(s.getsockname()[1]) for s in socks]
        raise BenchError(f"fewer than {count} free ports below {low}")
    finally:
        for s in socks:
            s.close()
