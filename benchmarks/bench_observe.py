"""What watching a service costs: an idle app's wake-ups, JSON logs, /metrics scrapes.

    python benchmarks/bench_observe.py [--runs N] [--quick] [--loops L]

1. Idle: the idle service of ``bench_runtime.py`` (``apps/bench_app.py``) under a
   hand-written ``asyncio.run``, aiorun and ``python -m graceful`` (no health
   server, no children), each left alone for ``IDLE_SECONDS`` after "ready": the
   context switches of all its threads (``/proc/PID/task/*/status``: each is a
   wake-up) per second, and its CPU time (``schedstat``) as a share of one core.
2. A stop that writes 100 lines (``apps/bench_observe_app.py``): SIGTERM to exit
   (through a pidfd) with ``--log-format text`` and ``json``, stderr to a file.
3. ``/metrics``: loop throughput (``apps/bench_health_app.py:spin``, ``await
   asyncio.sleep(0)`` per second of wall time) over ``SPIN_SECONDS``, with the
   health server and ``--metrics on``, not scraped and scraped once a second.

Runs are interleaved round-robin after one unrecorded warm-up round; medians and
ratios against the first runner of each part. Every wait is bounded.
"""

from __future__ import annotations

import argparse
import os
import platform
import select
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, TypeVar

from _common import (
    BenchError,
    available_loops,
    fmt_ratio,
    free_ports,
    idle_cost,
    start_ready,
)
from bench_runtime import make_runners, wait_exit

APPS = Path(__file__).parent / "apps"
T = TypeVar("T")
IDLE_SECONDS = 3.0
SPIN_SECONDS = 3.0
SCRAPE_PERIOD = 1.0
TIMEOUT = 30.0
DEFAULT_RUNS = 5
QUICK_RUNS = 1


def start(
    argv: list[str], *, env: dict[str, str] | None = None, stderr: IO[bytes] | None = None
) -> subprocess.Popen[bytes]:
    return start_ready(argv, APPS, TIMEOUT, env=env, stderr=stderr or subprocess.DEVNULL)


def stop(proc: subprocess.Popen[bytes]) -> float:
    """SIGTERM, then the exit seen through a pidfd (``bench_runtime.wait_exit``); seconds."""
    if proc.poll() is not None:
        return 0.0
    began = time.perf_counter()
    proc.send_signal(signal.SIGTERM)
    try:
        wait_exit(proc, TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(TIMEOUT)
        if proc.stdout is not None:
            proc.stdout.close()
    return time.perf_counter() - began


def idle_runners(loop: str) -> dict[str, list[str]]:
    """The idle service's runners of ``bench_runtime.py`` (a hand-written asyncio.run,
    aiorun, graceful), on ``loop``."""
    return {r.name: r.argv for r in make_runners([loop])}


def idle_once(argv: list[str]) -> tuple[float, float]:
    proc = start(argv)
    try:
        time.sleep(0.5)  # past the start-up's own work (imports, the first turns of the loop)
        return idle_cost(proc.pid, IDLE_SECONDS)
    finally:
        stop(proc)


def logs_once(log_format: str) -> float:
    argv = [sys.executable, "-m", "graceful", "--log-format", log_format, "--grace", "10",
            "bench_observe_app:stop_with_lines"]  # fmt: skip
    with tempfile.TemporaryFile() as err:
        proc = start(argv, stderr=err)
        return stop(proc)


def spin_once(loop: str, scrape: bool) -> float:
    (port,) = free_ports(1)
    argv = [sys.executable, "-m", "graceful", "--loop", loop, "--log-level", "WARNING",
            "--health-port", str(port), "--health-host", "127.0.0.1", "--metrics", "on",
            "bench_health_app:spin"]  # fmt: skip
    proc = start(argv, env={"SPIN_SECONDS": str(SPIN_SECONDS)})
    assert proc.stdout is not None
    try:
        fd, data = proc.stdout.fileno(), b""
        next_scrape = time.monotonic() + SCRAPE_PERIOD / 2
        end = time.monotonic() + SPIN_SECONDS + TIMEOUT
        while b"\n" not in data:
            now = time.monotonic()
            if now > end:
                raise BenchError("no rate line")
            if scrape and now >= next_scrape:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
                    conn.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                    while conn.recv(65536):
                        pass
                next_scrape += SCRAPE_PERIOD
                continue
            wait = max(0.0, next_scrape - now) if scrape else end - now
            if select.select([fd], [], [], wait)[0]:
                chunk = os.read(fd, 4096)
                if not chunk:
                    raise BenchError("stdout closed before the rate")
                data += chunk
        words = data.split(b"\n", 1)[0].decode().split()
        if len(words) != 3 or words[0] != "rate":
            raise BenchError(f"expected 'rate WALL CPU', got {words!r}")
        return float(words[1])
    finally:
        stop(proc)


def interleave(names: list[str], runs: int, one: Callable[[str], T]) -> dict[str, list[T]]:
    found: dict[str, list[T]] = {n: [] for n in names}
    for round_no in range(runs + 1):  # round 0: warm-up, not recorded
        for name in names:
            value = one(name)
            if round_no:
                found[name].append(value)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--loops", default="both", help="asyncio, uvloop or both")
    args = parser.parse_args(argv)
    runs = args.runs or (QUICK_RUNS if args.quick else DEFAULT_RUNS)
    loops = available_loops(args.loops)
    print(f"Command: {shlex.join([sys.executable, *sys.argv])}")
    print(f"Python {platform.python_version()}, {os.cpu_count()} CPUs, {runs} runs each")

    print(f"\n1. Idle for {IDLE_SECONDS:g} s after ready (no health server, no children)")
    print("| runner | wake-ups per second | CPU, % of a core |")
    print("|---|---:|---:|")
    for loop in loops:
        runners = idle_runners(loop)

        def idle(name: str, runners: dict[str, list[str]] = runners) -> tuple[float, float]:
            return idle_once(runners[name])

        for name, pairs in interleave(list(runners), runs, idle).items():
            wakeups = statistics.median(p[0] for p in pairs)
            cpu = statistics.median(p[1] for p in pairs)
            print(f"| {name} | {wakeups:.1f} | {cpu:.3f} |")

    print("\n2. SIGTERM to exit, a stop that logs 100 lines (ms, median)")
    print("| --log-format | stop ms | vs text |")
    print("|---|---:|---:|")
    stops = interleave(["text", "json"], runs * 4, logs_once)
    text_ms = statistics.median(stops["text"]) * 1000
    for name, seconds in stops.items():
        stop_ms = statistics.median(seconds) * 1000
        print(f"| {name} | {stop_ms:.1f} | {fmt_ratio(stop_ms, text_ms)} |")

    print(f"\n3. Loop throughput with --metrics on, {SPIN_SECONDS:g} s (sleep(0) per second)")
    print("| loop | not scraped | scraped every 1 s | ratio |")
    print("|---|---:|---:|---:|")
    for loop in loops:

        def spin(name: str, loop: str = loop) -> float:
            return spin_once(loop, name == "scraped")

        spins = interleave(["quiet", "scraped"], runs, spin)
        quiet = statistics.median(spins["quiet"])
        scraped = statistics.median(spins["scraped"])
        print(f"| {loop} | {quiet:,.0f} | {scraped:,.0f} | {fmt_ratio(scraped, quiet, 3)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
