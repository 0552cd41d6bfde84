"""Supervising 50 small Python workers: graceful vs supervisord vs circus; and the
loop's delay while supervised processes write a lot.

    python benchmarks/bench_supervisor.py [--runs N] [--workers N] [--quick] [--json PATH]

Part 1, start and stop. Every supervisor runs the same program
(``benchmarks/apps/bench_worker.py``: it sends its pid on a datagram socket of the
benchmark's, writes one line, sleeps until stopped), N copies (50 by default):

* ``graceful``: ``python -m graceful --log-level WARNING bench_supervised:main``,
  an app that calls ``graceful.spawn()`` N times (output="log", the default);
* ``supervisord``: the Debian package (installed with apt-get when missing), one
  ``[program]`` with ``numprocs=N``, ``nodaemon``, ``stopasgroup``/``killasgroup``,
  output to log files (its default);
* ``circus``: ``circusd`` from PyPI in a venv of its own under benchmarks/results/
  (made on first use; the row is left out if it does not install), one watcher
  with ``numprocesses=N``, output captured to log files.

Five numbers per run: start (from ``Popen`` of the supervisor to the N-th pid
received: every worker is running its own code), stop (from SIGTERM to the
supervisor until it and every worker have exited, seen through pidfds), the
supervisor's resident memory (VmRSS) once all N run, and its idle cost then: the
context switches of its threads per second (each a wake-up) and its CPU time as a
share of one core, over ``IDLE_SECONDS`` (graceful runs with its health server on,
as in a pod). A run whose supervisor exits non-zero is kept, its code reported;
workers are killed by signal in every case.

Part 2, output. ``benchmarks/apps/bench_output.py``: 20 ``cat`` processes write
10 MB of lines each at full speed into logging, while a 10 ms timer on the loop
records how late it wakes: graceful's Supervisor (a thread logs the lines) vs
asyncio subprocesses whose lines are read and logged on the loop. A separate
process measures the machine's own noise the same way.

Runs are interleaved round-robin after one unrecorded warm-up round; medians,
ratios. Every wait is bounded; leftovers are killed.
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
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from _common import BenchError, apt_install, child_env, fmt_ratio, free_ports, idle_cost, spread

HERE = Path(__file__).resolve().parent
APPS = HERE / "apps"
RESULTS = HERE / "results"
CIRCUS_VENV = RESULTS / "venv-circus"
WORKER = APPS / "bench_worker.py"
UP_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
DEFAULT_RUNS = 10
QUICK_RUNS = 2
IDLE_SETTLE = 1.5
IDLE_SECONDS = 6.0
"""With all workers up: how long the supervisor is left alone to measure its idle cost
(long enough to take in timers of a few seconds, such as graceful's lag watcher)."""
OUTPUT_WRITERS = 20
OUTPUT_MEGABYTES = 10


@dataclass
class Sample:
    runner: str
    round: int
    start_s: float | None = None
    stop_s: float | None = None
    rss_kb: int | None = None
    idle_wakeups: float | None = None
    idle_cpu: float | None = None
    returncode: int | None = None
    error: str | None = None


@dataclass
class Summary:
    runner: str
    start_ms: list[float] = field(default_factory=list)
    stop_ms: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)
    idle_wakeups: list[float] = field(default_factory=list)
    idle_cpu: list[float] = field(default_factory=list)
    codes: list[int | None] = field(default_factory=list)
    failed: int = 0

    def median(self, values: list[float]) -> float | None:
        return statistics.median(values) if values else None


# -- the supervisors ----------------------------------------------------------------------


def supervisord_conf(work: Path, workers: int, report: Path) -> list[str]:
    conf = work / "supervisord.conf"
    conf.write_text(
        "[supervisord]\n"
        "nodaemon=true\n"
        f"logfile={work}/supervisord.log\n"
        f"pidfile={work}/supervisord.pid\n"
        f"childlogdir={work}\n"
        "[program:w]\n"
        f"command={sys.executable} {WORKER} {report}\n"
        f"numprocs={workers}\n"
        "process_name=%(program_name)s_%(process_num)02d\n"
        "startsecs=0\n"
        "stopasgroup=true\n"
        "killasgroup=true\n"
        "stopwaitsecs=10\n"
        "autorestart=unexpected\n"
    )
    return ["supervisord", "-c", str(conf)]


def circus_conf(work: Path, workers: int, report: Path) -> list[str]:
    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    conf = work / "circus.ini"
    conf.write_text(
        "[circus]\n"
        f"endpoint = tcp://127.0.0.1:{ports[0]}\n"
        f"pubsub_endpoint = tcp://127.0.0.1:{ports[1]}\n"
        "statsd = False\n"
        "[watcher:w]\n"
        f"cmd = {sys.executable} {WORKER} {report}\n"
        f"numprocesses = {workers}\n"
        "graceful_timeout = 10\n"
        "stdout_stream.class = FileStream\n"
        f"stdout_stream.filename = {work}/circus-w.log\n"
    )
    return [str(CIRCUS_VENV / "bin" / "circusd"), str(conf)]


def graceful_argv(work: Path, workers: int, report: Path) -> list[str]:
    # With the health server on (and its loop-lag heartbeat), as a service in a pod runs.
    (port,) = free_ports(1)
    health = ["--health-port", str(port), "--health-host", "127.0.0.1"]
    return [
        sys.executable,
        "-m",
        "graceful",
        "--log-level",
        "WARNING",
        *health,
        "bench_supervised:main",
    ]


RUNNERS = {"graceful": graceful_argv, "supervisord": supervisord_conf, "circus": circus_conf}


def ensure_supervisord() -> bool:
    if shutil.which("supervisord") is None and not apt_install(["supervisor"]):
        print("supervisord is not installed and could not be: row left out", file=sys.stderr)
        return False
    return shutil.which("supervisord") is not None


def ensure_circus() -> bool:
    circusd = CIRCUS_VENV / "bin" / "circusd"
    if circusd.exists():
        return True
    print(f"installing circus into {CIRCUS_VENV}", file=sys.stderr)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(CIRCUS_VENV)], check=True, timeout=300)
        subprocess.run(
            [str(CIRCUS_VENV / "bin" / "pip"), "install", "--quiet", "circus"],
            check=True,
            timeout=600,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        print(f"circus does not install here ({exc}): row left out", file=sys.stderr)
        return False
    return circusd.exists()


# -- one run ------------------------------------------------------------------------------


def rss_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def run_once(runner: str, round_no: int, workers: int) -> Sample:
    sample = Sample(runner, round_no)
    with tempfile.TemporaryDirectory(prefix="bench-sup-") as tmp:
        work = Path(tmp)
        report_path = work / "report.sock"
        report = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        report.bind(str(report_path))
        env = {**child_env(), "BENCH_SOCKET": str(report_path), "BENCH_WORKERS": str(workers)}
        argv = RUNNERS[runner](work, workers, report_path)
        pidfds: dict[int, int] = {}
        proc: subprocess.Popen[bytes] | None = None
        try:
            with open(work / "out.log", "wb") as out:
                t0 = time.perf_counter()
                proc = subprocess.Popen(
                    argv, cwd=APPS, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out
                )
                end = time.monotonic() + UP_TIMEOUT
                while len(pidfds) < workers:
                    left = end - time.monotonic()
                    if left <= 0 or not select.select([report], [], [], left)[0]:
                        raise BenchError(f"{len(pidfds)}/{workers} workers up in {UP_TIMEOUT:g} s")
                    pid = int(report.recv(64))
                    pidfds[pid] = os.pidfd_open(pid)
                t_up = time.perf_counter()
            sample.start_s = t_up - t0
            sample.rss_kb = rss_kb(proc.pid)
            time.sleep(IDLE_SETTLE)  # past the start: the last min_uptime timers, lines logged
            sample.idle_wakeups, sample.idle_cpu = idle_cost(proc.pid, IDLE_SECONDS)
            parent = os.pidfd_open(proc.pid)
            pidfds[proc.pid] = parent
            t1 = time.perf_counter()
            proc.send_signal(signal.SIGTERM)
            poller = select.poll()
            for fd in pidfds.values():
                poller.register(fd, select.POLLIN)
            waiting = set(pidfds.values())
            end = time.monotonic() + STOP_TIMEOUT
            while waiting:
                left = end - time.monotonic()
                events = poller.poll(max(0.0, left) * 1000) if left > 0 else []
                if not events:
                    raise BenchError(
                        f"{len(waiting)} processes still alive {STOP_TIMEOUT:g} s after SIGTERM"
                    )
                for fd, _ in events:
                    poller.unregister(fd)
                    waiting.discard(fd)
            sample.stop_s = time.perf_counter() - t1
            sample.returncode = proc.wait(5)
        except (BenchError, OSError, ValueError) as exc:
            tail = (work / "out.log").read_bytes()[-1500:].decode(errors="replace")
            sample.error = f"{exc}; output: {tail.strip()}"
        finally:
            for pid in pidfds:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(5)
            for fd in pidfds.values():
                os.close(fd)
            report.close()
    return sample


# -- output ------------------------------------------------------------------------------


def make_output_data(directory: Path, writers: int, megabytes: int) -> None:
    for w in range(writers):
        lines = []
        total = i = 0
        while total < megabytes * 1_000_000:
            line = f"w{w} {i} " + chr(ord("a") + i % 26) * (20 + (i * 7919) % 1200) + "\n"
            lines.append(line)
            total += len(line)
            i += 1
        (directory / f"w{w:02d}.txt").write_text("".join(lines))


def output_once(mode: str, data: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-out-") as tmp:
        env = {**child_env(), "BENCH_DATA": str(data), "BENCH_LOG": f"{tmp}/lines.log"}
        done = subprocess.run(
            [sys.executable, "-m", "graceful", "--log-level", "INFO", f"bench_output:{mode}"],
            cwd=APPS,
            env=env,
            capture_output=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0:
            raise BenchError(f"{mode}: exit {done.returncode}: {done.stderr[-1500:].decode()}")
        result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
        result["lines"] = sum(1 for _ in open(f"{tmp}/lines.log", "rb"))
        return result


# -- report -------------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def report_start_stop(runners: list[str], samples: list[Sample], workers: int) -> list[str]:
    sums = {r: Summary(r) for r in runners}
    for one in samples:
        summary = sums[one.runner]
        if one.error is not None or one.start_s is None or one.stop_s is None:
            summary.failed += 1
            continue
        summary.start_ms.append(one.start_s * 1000)
        summary.stop_ms.append(one.stop_s * 1000)
        if one.rss_kb is not None:
            summary.rss_mb.append(one.rss_kb / 1024)
        if one.idle_wakeups is not None and one.idle_cpu is not None:
            summary.idle_wakeups.append(one.idle_wakeups)
            summary.idle_cpu.append(one.idle_cpu)
        summary.codes.append(one.returncode)
    ref = sums.get("supervisord")
    print(f"## Start and stop {workers} workers\n")
    print(
        "| supervisor | start median ms | vs supervisord | stop median ms | vs supervisord"
        " | supervisor RSS MB | idle wake-ups/s | idle CPU % | exit codes |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in runners:
        s = sums[r]
        start, stop, rss = s.median(s.start_ms), s.median(s.stop_ms), s.median(s.rss_mb)
        codes = ", ".join(str(c) for c in sorted(set(s.codes), key=str)) or "n/a"
        print(
            f"| {r} | {fmt(start)} | {fmt_ratio(start, ref.median(ref.start_ms) if ref else None)}"
            f" | {fmt(stop)} | {fmt_ratio(stop, ref.median(ref.stop_ms) if ref else None)}"
            f" | {fmt(rss)} | {fmt(s.median(s.idle_wakeups))} | {fmt(s.median(s.idle_cpu), 3)}"
            f" | {codes} |"
        )
    print("\nSpread (ms, min / p10 / p90 / max) and failed runs:\n")
    print("| supervisor | start | stop | ok | failed |")
    print("|---|---|---|---:|---:|")
    for r in runners:
        s = sums[r]
        print(
            f"| {r} | {spread(s.start_ms)} | {spread(s.stop_ms)} | {len(s.start_ms)} | {s.failed} |"
        )
    missed = []
    g = sums.get("graceful")
    if g is not None and ref is not None:
        print("\nTargets:")
        for what, mine, theirs in (
            ("start", g.median(g.start_ms), ref.median(ref.start_ms)),
            ("stop", g.median(g.stop_ms), ref.median(ref.stop_ms)),
        ):
            met = mine is not None and theirs is not None and mine < theirs
            print(
                f"  [{'met' if met else 'MISSED'}] graceful {what} median faster than supervisord's:"
                f" {fmt(mine)} ms vs {fmt(theirs)} ms ({fmt_ratio(mine, theirs, 3)})"
            )
            if not met:
                missed.append(what)
    return missed


def report_output(results: dict[str, list[dict[str, Any]]]) -> None:
    print(f"\n## Loop delay while {OUTPUT_WRITERS} processes write {OUTPUT_MEGABYTES} MB each\n")
    print(
        "| lines handled by | worst timer delay median ms | p99 median ms"
        " | machine's own worst ms | took s | lines logged |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    names = {
        "supervised": "graceful Supervisor (output thread)",
        "on_loop": "readline + log on the loop",
    }
    for mode, runs in results.items():
        if not runs:
            print(f"| {names[mode]} | n/a | n/a | n/a | n/a | n/a |")
            continue
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0] if k != "lines"}
        print(
            f"| {names[mode]} | {med['worst_s'] * 1000:.1f} | {med['p99_s'] * 1000:.1f}"
            f" | {med['machine_worst_s'] * 1000:.1f} | {med['took_s']:.2f} | {runs[0]['lines']} |"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--runs", type=int, help=f"measured runs per supervisor (default {DEFAULT_RUNS})"
    )
    parser.add_argument("--workers", type=int, default=50, help="workers per run (default 50)")
    parser.add_argument("--quick", action="store_true", help=f"smoke test: {QUICK_RUNS} runs")
    parser.add_argument("--skip-output", action="store_true", help="only start and stop")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the raw results")
    args = parser.parse_args(argv)
    rounds = args.runs if args.runs is not None else QUICK_RUNS if args.quick else DEFAULT_RUNS
    if rounds < 1 or args.workers < 1:
        parser.error("--runs and --workers must be at least 1")
    RESULTS.mkdir(exist_ok=True)
    runners = ["graceful"]
    if ensure_supervisord():
        runners.append("supervisord")
    if ensure_circus():
        runners.append("circus")
    print(
        f"Python {platform.python_version()} on {platform.system()} {platform.release()},", end=""
    )
    print(f" {os.cpu_count()} CPUs")
    print(f"Command: {shlex.join([sys.executable, *sys.argv])}")
    print(f"{rounds} runs per supervisor, interleaved round-robin after 1 warm-up round.\n")
    for runner in runners:
        warm = run_once(runner, -1, args.workers)
        if warm.error:
            print(f"warm-up of {runner} failed: {warm.error}", file=sys.stderr)
    samples: list[Sample] = []
    for round_no in range(rounds):
        for runner in runners:
            sample = run_once(runner, round_no, args.workers)
            if sample.error:
                print(f"run {round_no} of {runner} failed: {sample.error}", file=sys.stderr)
            samples.append(sample)
    missed = report_start_stop(runners, samples, args.workers)
    output: dict[str, list[dict[str, Any]]] = {"supervised": [], "on_loop": []}
    if not args.skip_output:
        with tempfile.TemporaryDirectory(prefix="bench-data-") as data:
            make_output_data(Path(data), OUTPUT_WRITERS, OUTPUT_MEGABYTES)
            for _ in range(max(1, min(rounds, 5))):
                for mode in output:
                    try:
                        output[mode].append(output_once(mode, Path(data)))
                    except (BenchError, subprocess.SubprocessError, ValueError) as exc:
                        print(f"output run of {mode} failed: {exc}", file=sys.stderr)
        report_output(output)
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {
                    "python": sys.version,
                    "command": [sys.executable, *sys.argv],
                    "samples": [asdict(s) for s in samples],
                    "output": output,
                    "targets_missed": missed,
                },
                indent=2,
            )
            + "\n"
        )
    return 1 if any(s.error for s in samples) else 0


if __name__ == "__main__":
    sys.exit(main())
