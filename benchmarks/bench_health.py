"""What the health server costs, side by side in one run.

    python benchmarks/bench_health.py [--runs N] [--quick] [--json PATH] [--loops L]

1. Loop throughput: ``apps/bench_health_app.py:spin`` counts ``await
   asyncio.sleep(0)`` for ``SPIN_SECONDS`` (1 s) under ``python -m graceful``,
   with the health server and loop-lag watchdog off, and on while this process
   probes it every 100 ms (``/livez`` and ``/readyz`` in turn, a new connection
   each, as the kubelet does). The app reports its own rate, per second of wall
   time and per second of the process's CPU time; medians of per-round ratios.
   1b: one process with the server on, probed in every other 0.5 s window only
   (``bench_health_app:spin_windows``), so that the noise between processes drops
   out. 1c: the CPU time of an idle app's threads (``/proc/PID/task/*/schedstat``)
   with the server off and on, and per probe.
2. Probe command: wall time (spawn to exit, through ``os.wait4``) and CPU time
   (user + system of the child, from the same ``wait4``) of
   ``python -m graceful probe ready`` against ``curl``, a ``urllib.request``
   one-liner, a raw-socket one-liner, and ``python -c pass`` as the floor, all
   asking ``/readyz`` of one running app. Every Python runner is the same
   interpreter (``sys.executable``) with the same ``site``.
3. ``/readyz`` latency, p50 and p99, from connect to the last byte, with the app's
   loop idle (``apps/bench_app.py:main``), busy with pure-Python work in 5 ms
   slices (``bench_health_app:busy``), and busy with one readiness check
   registered (the check has to wait for the loop between two slices).

Runs are interleaved round-robin after one unrecorded warm-up round, so drift of
the machine hits every runner alike. Every wait is bounded; a child still alive
at the end of a run is killed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import select
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from _common import (
    BenchError,
    available_loops,
    child_env,
    fmt_ratio,
    free_ports,
    spread,
    start_ready,
)

APPS = Path(__file__).resolve().parent / "apps"
READY_TIMEOUT = 20.0
RUN_TIMEOUT = 30.0
KILL_TIMEOUT = 5.0
SPIN_SECONDS = 1.0
PROBE_PERIOD = 0.1
THROUGHPUT_TARGET = 0.98
"""With the server on and probed, the loop may be at most 2 % slower."""
QUICK_RUNS = 3
DEFAULT_RUNS = 20
LATENCY_REQUESTS = 100
"""Requests per latency run (sequential); runs x this = the samples of a scenario."""


# -- helpers ------------------------------------------------------------------------------


def free_port() -> int:
    return free_ports(1)[0]


def http_get(port: int, path: str, timeout: float = 5.0) -> int:
    """One GET on a new connection; the status code."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
        )
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
    return int(data.split(b" ", 2)[1])


def graceful_argv(loop: str, target: str, port: int | None) -> list[str]:
    argv = [sys.executable, "-m", "graceful", "--loop", loop, "--log-level", "WARNING"]
    if port is not None:
        argv += ["--health-port", str(port), "--health-host", "127.0.0.1"]
    return [*argv, target]


def start_app(argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return start_ready(argv, APPS, READY_TIMEOUT, env=env)


def stop_app(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(KILL_TIMEOUT)
    if proc.stdout is not None:
        proc.stdout.close()


def wait_bounded(pid: int, timeout: float) -> tuple[int, float]:
    """Wait for ``pid`` (noticing its exit at once, through a pidfd): (exit code, CPU s)."""
    pidfd = os.pidfd_open(pid)
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        if not poller.poll(timeout * 1000):
            os.kill(pid, signal.SIGKILL)
    finally:
        os.close(pidfd)
    _pid, status, usage = os.wait4(pid, 0)
    return os.waitstatus_to_exitcode(status), usage.ru_utime + usage.ru_stime


def interleaved(names: list[str], rounds: int) -> Iterator[tuple[int, str]]:
    for round_no in range(rounds):
        for name in names:
            yield round_no, name


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


@dataclass
class Series:
    name: str
    values: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


# -- 1. loop throughput ----------------------------------------------------------------------


def throughput_once(loop: str, on: bool) -> tuple[float, float, int]:
    """(iterations per wall second, per CPU second, probes answered 200) of one run."""
    port = free_port() if on else None
    proc = start_app(
        graceful_argv(loop, "bench_health_app:spin", port), {"SPIN_SECONDS": str(SPIN_SECONDS)}
    )
    assert proc.stdout is not None
    try:
        fd = proc.stdout.fileno()
        data = b""
        probes = 0
        next_probe = time.monotonic() + PROBE_PERIOD
        end = time.monotonic() + SPIN_SECONDS + RUN_TIMEOUT
        while b"\n" not in data:
            now = time.monotonic()
            if now > end:
                raise BenchError("no rate line")
            if port is not None and now >= next_probe:
                path = "/livez" if probes % 2 == 0 else "/readyz"
                if http_get(port, path) != 200:
                    raise BenchError(f"{path} did not answer 200 while spinning")
                probes += 1
                next_probe += PROBE_PERIOD
                continue
            wait = max(0.0, next_probe - now) if port is not None else end - now
            if select.select([fd], [], [], wait)[0]:
                chunk = os.read(fd, 4096)
                if not chunk:
                    raise BenchError(f"stdout closed before the rate (got {data!r})")
                data += chunk
        words = data.split(b"\n", 1)[0].decode().split()
        if len(words) != 3 or words[0] != "rate":
            raise BenchError(f"expected 'rate WALL CPU', got {words!r}")
        return float(words[1]), float(words[2]), probes
    finally:
        stop_app(proc)


@dataclass
class Pair:
    """The runs of one round, off and on, for ratios that drift cannot skew."""

    off: tuple[float, float] | None = None
    on: tuple[float, float] | None = None


def bench_throughput(loops: list[str], rounds: int) -> dict[str, Any]:
    names = [f"{state} ({loop})" for loop in loops for state in ("off", "on")]
    series = {name: Series(name) for name in names}
    pairs: dict[tuple[str, int], Pair] = {}
    probes: list[int] = []

    def one(name: str, round_no: int) -> None:
        state, loop = name[:-1].split(" (")
        wall, cpu, count = throughput_once(loop, state == "on")
        series[name].values.append(wall)
        series[name].cpu.append(cpu)
        pair = pairs.setdefault((loop, round_no), Pair())
        setattr(pair, state, (wall, cpu))
        if state == "on":
            probes.append(count)

    _run_all(names, rounds, one, series)
    rows = []
    for loop in loops:
        off, on = series[f"off ({loop})"], series[f"on ({loop})"]
        done = [p for (lp, _r), p in pairs.items() if lp == loop and p.off and p.on]
        wall_ratio = median([p.on[0] / p.off[0] for p in done if p.on and p.off])
        cpu_ratio = median([p.on[1] / p.off[1] for p in done if p.on and p.off])
        rows.append((loop, off, on, wall_ratio, cpu_ratio))
    print("### 1. Loop throughput: `await asyncio.sleep(0)` iterations per second")
    print()
    print(
        f"{rounds} runs of {SPIN_SECONDS:g} s per runner; 'on' = health server and watchdog"
        f" on, probed every {PROBE_PERIOD * 1000:.0f} ms (median"
        f" {fmt(median([float(p) for p in probes]), 0)} probes per run). Per CPU second: the"
        " iterations divided by the CPU time of the whole process (every thread),"
        " which other processes on the machine cannot skew. Ratios: median of the"
        " on/off ratios of each round."
    )
    print()
    print(
        "| loop | off it/s (wall) | on it/s (wall) | on/off wall | off it/CPU-s | on it/CPU-s | on/off CPU |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for loop, off, on, wall_ratio, cpu_ratio in rows:
        print(
            f"| {loop} | {fmt(median(off.values), 0)} | {fmt(median(on.values), 0)} |"
            f" {fmt(wall_ratio, 3)}x | {fmt(median(off.cpu), 0)} | {fmt(median(on.cpu), 0)} |"
            f" {fmt(cpu_ratio, 3)}x |"
        )
    print()
    print("Spread of it/s, wall (min / p10 / p90 / max):")
    print()
    for _loop, off, on, _w, _c in rows:
        print(f"- {off.name}: {spread(off.values)}; {on.name}: {spread(on.values)}")
    print()
    return {
        "series": {n: asdict(s) for n, s in series.items()},
        "rows": [(loop, w, c, off, on) for loop, off, on, w, c in rows],
    }


WINDOWS = 12
WINDOW_SECONDS = 0.5


def windows_once(loop: str) -> tuple[float, float]:
    """One process, health server on, probed in every other window only: (median rate
    of the probed windows / median of the others), wall and CPU."""
    port = free_port()
    env = {"SPIN_WINDOWS": str(WINDOWS), "WINDOW_SECONDS": str(WINDOW_SECONDS)}
    proc = start_app(graceful_argv(loop, "bench_health_app:spin_windows", port), env)
    assert proc.stdout is not None
    try:
        fd = proc.stdout.fileno()
        buffer = b""
        probing = False
        rates: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
        next_probe = time.monotonic()
        end = time.monotonic() + WINDOWS * WINDOW_SECONDS + RUN_TIMEOUT
        while sum(len(v) for v in rates.values()) < WINDOWS:
            now = time.monotonic()
            if now > end:
                raise BenchError("the windows did not finish")
            if probing and now >= next_probe:
                if http_get(port, "/livez" if int(now * 10) % 2 else "/readyz") != 200:
                    raise BenchError("a probe did not answer 200")
                next_probe = now + PROBE_PERIOD
                continue
            wait = max(0.0, next_probe - now) if probing else end - now
            if select.select([fd], [], [], wait)[0]:
                chunk = os.read(fd, 4096)
                if not chunk:
                    raise BenchError("stdout closed during the windows")
                buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                words = line.decode().split()
                if words[0] == "window":
                    probing = int(words[1]) % 2 == 1
                    next_probe = time.monotonic()
                elif words[0] == "rate":
                    rates[int(words[1]) % 2 == 1].append((float(words[2]), float(words[3])))
        on, off = rates[True], rates[False]
        wall = statistics.median(r[0] for r in on) / statistics.median(r[0] for r in off)
        cpu = statistics.median(r[1] for r in on) / statistics.median(r[1] for r in off)
        return wall, cpu
    finally:
        stop_app(proc)


def bench_windows(loops: list[str], rounds: int) -> dict[str, Any]:
    names = [f"windows ({loop})" for loop in loops]
    series = {name: Series(name) for name in names}

    def one(name: str, _round: int) -> None:
        wall, cpu = windows_once(name[:-1].split(" (")[1])
        series[name].values.append(wall)
        series[name].cpu.append(cpu)

    _run_all(names, max(1, rounds // 3), one, series)
    print("### 1b. Probed against not probed, in one process")
    print()
    print(
        f"Health server on; {WINDOWS} windows of {WINDOW_SECONDS:g} s, probed every"
        f" {PROBE_PERIOD * 1000:.0f} ms in every other one; the ratio of the median rates"
        f" of the two kinds of windows, median over {max(1, rounds // 3)} processes. The"
        " cost of being probed, without the noise between one process and the next."
    )
    print()
    print("| loop | probed / not probed, wall | probed / not probed, CPU |")
    print("|---|---:|---:|")
    rows = []
    for loop in loops:
        s = series[f"windows ({loop})"]
        wall, cpu = median(s.values), median(s.cpu)
        rows.append((loop, wall, cpu))
        print(f"| {loop} | {fmt(wall, 3)}x | {fmt(cpu, 3)}x |")
    print()
    return {"series": {n: asdict(s) for n, s in series.items()}, "rows": rows}


def cpu_ns(pid: int) -> int:
    """CPU time of every thread of ``pid`` so far, in ns (``/proc/PID/task/*/schedstat``;
    nanoseconds, where ``/proc/PID/stat`` counts 10 ms ticks)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):  # a thread that just ended
            total += int((task / "schedstat").read_text().split()[0])
    return total


IDLE_WINDOW = 2.0
COST_PROBES = 500


def cost_once(loop: str, on: bool) -> tuple[float, float | None]:
    """(CPU us per second of an idle app, CPU us per probe or None when off)."""
    port = free_port() if on else None
    proc = start_app(graceful_argv(loop, "bench_app:main", port))
    try:
        before = cpu_ns(proc.pid)
        time.sleep(IDLE_WINDOW)  # the measurement: what the app spends doing nothing
        idle = (cpu_ns(proc.pid) - before) / 1000 / IDLE_WINDOW
        if port is None:
            return idle, None
        for _ in range(10):  # warm-up
            http_get(port, "/livez")
        start_ns, start = cpu_ns(proc.pid), time.monotonic()
        for i in range(COST_PROBES):
            http_get(port, "/readyz" if i % 2 else "/livez")
        spent = cpu_ns(proc.pid) - start_ns - idle * 1000 * (time.monotonic() - start)
        return idle, spent / 1000 / COST_PROBES
    finally:
        stop_app(proc)


def bench_cost(loops: list[str], rounds: int) -> dict[str, Any]:
    names = [f"{state} ({loop})" for loop in loops for state in ("off", "on")]
    series = {name: Series(name) for name in names}

    def one(name: str, _round: int) -> None:
        state, loop = name[:-1].split(" (")
        idle, per_probe = cost_once(loop, state == "on")
        series[name].values.append(idle)
        if per_probe is not None:
            series[name].cpu.append(per_probe)

    _run_all(names, max(1, rounds // 4), one, series)
    print("### 1c. The same cost in CPU time, which load on the machine cannot skew")
    print()
    print(
        f"CPU time of all the app's threads (schedstat, ns): idle over {IDLE_WINDOW:g} s,"
        f" then over {COST_PROBES} probes on new connections (idle share subtracted);"
        f" {max(1, rounds // 4)} runs per row."
    )
    print()
    print("| loop | idle off us/s | idle on us/s | per probe us | share of a core at 10 probes/s |")
    print("|---|---:|---:|---:|---:|")
    rows = []
    for loop in loops:
        off, on = series[f"off ({loop})"], series[f"on ({loop})"]
        idle_off, idle_on, probe = median(off.values), median(on.values), median(on.cpu)
        share = None
        if idle_off is not None and idle_on is not None and probe is not None:
            share = (idle_on - idle_off + 10 * probe) / 1e6 * 100
        rows.append((loop, share))
        print(
            f"| {loop} | {fmt(idle_off, 0)} | {fmt(idle_on, 0)} | {fmt(probe, 0)} |"
            f" {fmt(share, 2)} % |"
        )
    print()
    return {"series": {n: asdict(s) for n, s in series.items()}, "rows": rows}


# -- 2. the probe command ---------------------------------------------------------------------


def probe_runners(port: int) -> dict[str, list[str] | None]:
    py = sys.executable
    url = f"http://127.0.0.1:{port}/readyz"
    curl = shutil.which("curl")
    raw = (
        "import socket,sys;"
        f"s=socket.create_connection(('127.0.0.1',{port}),2);"
        "s.sendall(b'GET /readyz HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n');"
        "sys.exit(0 if s.recv(64).split()[1]==b'200' else 1)"
    )
    urllib = (
        "import urllib.request,sys;"
        f"sys.exit(0 if urllib.request.urlopen('{url}',timeout=2).status==200 else 1)"
    )
    return {
        "graceful probe ready": [py, "-m", "graceful", "probe", "ready", "--port", str(port)],
        "curl -fsS": None if curl is None else [curl, "-fsS", "-o", "/dev/null", url],
        "urllib.request one-liner": [py, "-c", urllib],
        "raw-socket one-liner": [py, "-c", raw],
        "python -c pass (floor)": [py, "-c", "pass"],
    }


def spawn_once(argv: list[str]) -> tuple[float, float]:
    """(wall s, CPU s) of one run of ``argv`` to its exit; raises unless it exits 0."""
    null = os.devnull
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, null, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, null, os.O_WRONLY, 0),
        (os.POSIX_SPAWN_OPEN, 2, null, os.O_WRONLY, 0),
    ]
    env = child_env()
    start = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, env, file_actions=actions)
    code, cpu = wait_bounded(pid, RUN_TIMEOUT)
    wall = time.perf_counter() - start
    if code != 0:
        raise BenchError(f"exit code {code}: {shlex.join(argv)}")
    return wall, cpu


def bench_probe(rounds: int) -> dict[str, Any]:
    port = free_port()
    server = start_app(graceful_argv("asyncio", "bench_app:main", port))
    try:
        runners = probe_runners(port)
        names = [n for n, argv in runners.items() if argv is not None]
        series = {name: Series(name) for name in names}

        def one(name: str, _round: int) -> None:
            argv = runners[name]
            assert argv is not None
            wall, cpu = spawn_once(argv)
            series[name].values.append(wall * 1000)
            series[name].cpu.append(cpu * 1000)

        _run_all(names, rounds, one, series)
    finally:
        stop_app(server)
    raw = median(series["raw-socket one-liner"].values)
    print("### 2. Probe command: wall and CPU time, spawn to exit")
    print()
    print(f"{rounds} runs per runner, against one idle app's `/readyz`.")
    print()
    print("| runner | wall median ms | vs raw socket | CPU median ms |")
    print("|---|---:|---:|---:|")
    for name, argv in runners.items():
        if argv is None:
            print(f"| {name} | not installed | | |")
            continue
        s = series[name]
        m = median(s.values)
        print(f"| {name} | {fmt(m)} | {fmt_ratio(m, raw)} | {fmt(median(s.cpu))} |")
    print()
    print("Spread of wall ms (min / p10 / p90 / max):")
    print()
    for name in names:
        print(f"- {name}: {spread(series[name].values)}")
    print()
    print("Commands:")
    for name, argv in runners.items():
        if argv is not None:
            print(f"  {name}: {shlex.join(argv)}")
    print()
    return {"series": {n: asdict(s) for n, s in series.items()}}


# -- 3. /readyz latency on a busy loop --------------------------------------------------------


def latency_once(loop: str, scenario: str) -> list[float]:
    port = free_port()
    target = "bench_app:main" if scenario == "idle loop" else "bench_health_app:busy"
    env = {"BENCH_CHECK": "1"} if scenario.endswith("check") else {}
    proc = start_app(graceful_argv(loop, target, port), env)
    try:
        for _ in range(5):  # warm-up: the first answers pay for imports and caches
            http_get(port, "/readyz")
        samples = []
        for _ in range(LATENCY_REQUESTS):
            start = time.perf_counter()
            status = http_get(port, "/readyz")
            samples.append((time.perf_counter() - start) * 1000)
            if status != 200:
                raise BenchError(f"/readyz answered {status}")
        return samples
    finally:
        stop_app(proc)


SCENARIOS = ("idle loop", "busy loop (5 ms slices)", "busy loop + 1 readiness check")


def bench_latency(loops: list[str], rounds: int) -> dict[str, Any]:
    names = [f"{scenario} ({loop})" for loop in loops for scenario in SCENARIOS]
    series = {name: Series(name) for name in names}

    def one(name: str, _round: int) -> None:
        scenario, loop = name.rsplit(" (", 1)
        series[name].values.extend(latency_once(loop.rstrip(")"), scenario))

    _run_all(names, max(1, rounds // 4), one, series)
    print("### 3. `/readyz` latency while the app's loop is busy (connect to last byte)")
    print()
    print(f"{max(1, rounds // 4)} runs x {LATENCY_REQUESTS} sequential requests per row.")
    print()
    print("| loop | scenario | p50 ms | p99 ms |")
    print("|---|---|---:|---:|")
    for name in names:
        scenario, loop = name.rsplit(" (", 1)
        values = series[name].values
        if len(values) < 2:
            print(f"| {loop.rstrip(')')} | {scenario} | n/a | n/a |")
            continue
        q = statistics.quantiles(values, n=100, method="inclusive")
        print(f"| {loop.rstrip(')')} | {scenario} | {q[49]:.2f} | {q[98]:.2f} |")
    print()
    return {"series": {n: asdict(s) for n, s in series.items()}}


# -- driver ---------------------------------------------------------------------------------------


def _run_all(names: list[str], rounds: int, one: Any, series: dict[str, Series]) -> None:
    """Call ``one(name, round)`` for every runner, round-robin, after a warm-up round
    whose results are dropped."""
    for name in names:
        saved = series[name]
        series[name] = Series(name)
        try:
            one(name, -1)
        except (BenchError, OSError, subprocess.SubprocessError) as exc:
            print(f"warm-up of {name} failed: {exc}", file=sys.stderr)
        finally:
            series[name] = saved
    for round_no, name in interleaved(names, rounds):
        try:
            one(name, round_no)
        except (BenchError, OSError, subprocess.SubprocessError) as exc:
            series[name].errors.append(str(exc))
            print(f"run {round_no} of {name} failed: {exc}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, help=f"runs per runner (default {DEFAULT_RUNS})")
    parser.add_argument("--quick", action="store_true", help=f"smoke test: {QUICK_RUNS} runs")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the raw results")
    parser.add_argument(
        "--loops", choices=("both", "asyncio", "uvloop"), default="both", help="default both"
    )
    parser.add_argument(
        "--only",
        choices=("throughput", "windows", "cost", "probe", "latency"),
        help="run one part only",
    )
    args = parser.parse_args(argv)
    rounds = args.runs if args.runs is not None else QUICK_RUNS if args.quick else DEFAULT_RUNS
    if rounds < 1:
        parser.error("--runs must be at least 1")
    loops = available_loops(args.loops)

    print(f"Python {platform.python_version()} ({platform.python_implementation()})", end="")
    print(f" on {platform.system()} {platform.release()} {platform.machine()},", end="")
    print(f" {os.cpu_count()} CPUs")
    print(f"Command: {shlex.join([sys.executable, *sys.argv])}")
    print()
    result: dict[str, Any] = {"python": sys.version, "command": [sys.executable, *sys.argv]}
    missed: list[str] = []
    failed = 0
    if args.only in (None, "throughput"):
        part = bench_throughput(loops, rounds)
        for loop, wall_ratio, cpu_ratio, off_s, on_s in part.pop("rows"):
            failed += len(off_s.errors) + len(on_s.errors)
            for kind, ratio in (("per CPU second", cpu_ratio), ("per wall second", wall_ratio)):
                met = ratio is not None and ratio >= THROUGHPUT_TARGET
                what = f"loop throughput {kind}, on and probed >= {THROUGHPUT_TARGET:.2f}x off ({loop})"
                print(f"  [{'met' if met else 'MISSED'}] {what}: {fmt(ratio, 3)}x")
                if not met:
                    missed.append(what)
        print()
        result["throughput"] = part
    if args.only in (None, "throughput", "windows"):
        part = bench_windows(loops, rounds)
        for loop, wall, _cpu in part.pop("rows"):
            failed += sum(len(v["errors"]) for v in part["series"].values())
            met = wall is not None and wall >= THROUGHPUT_TARGET
            what = f"loop throughput probed >= {THROUGHPUT_TARGET:.2f}x not probed, one process ({loop})"
            print(f"  [{'met' if met else 'MISSED'}] {what}: {fmt(wall, 3)}x")
            if not met:
                missed.append(what)
        print()
        result["windows"] = part
    if args.only in (None, "throughput", "cost"):
        part = bench_cost(loops, rounds)
        for loop, share in part.pop("rows"):
            failed += sum(len(v["errors"]) for v in part["series"].values())
            met = share is not None and share <= (1 - THROUGHPUT_TARGET) * 100
            what = f"CPU of the server + watchdog at 10 probes/s <= {(1 - THROUGHPUT_TARGET) * 100:g} % of a core ({loop})"
            print(f"  [{'met' if met else 'MISSED'}] {what}: {fmt(share, 2)} %")
            if not met:
                missed.append(what)
        print()
        result["cost"] = part
    if args.only in (None, "probe"):
        part = bench_probe(rounds)
        s = part["series"]
        failed += sum(len(v["errors"]) for v in s.values())
        probe_m = median(s["graceful probe ready"]["values"])
        raw_m = median(s["raw-socket one-liner"]["values"])
        url_m = median(s["urllib.request one-liner"]["values"])
        for what, mine, ref, limit in (
            ("probe wall median <= the raw-socket one-liner's", probe_m, raw_m, 1.0),
            ("probe wall median <= 0.6x the urllib one-liner's", probe_m, url_m, 0.6),
        ):
            met = mine is not None and ref is not None and mine <= limit * ref
            print(f"  [{'met' if met else 'MISSED'}] {what}: {fmt_ratio(mine, ref, 3)}")
            if not met:
                missed.append(what)
        print()
        result["probe"] = part
    if args.only in (None, "latency"):
        part = bench_latency(loops, rounds)
        failed += sum(len(v["errors"]) for v in part["series"].values())
        result["latency"] = part
    result["targets_missed"] = missed
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"Raw results written to {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
