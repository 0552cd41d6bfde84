"""Start-up and SIGTERM-to-exit of an idle asyncio service: graceful vs aiorun vs by hand.

    python benchmarks/bench_runtime.py [--runs N] [--quick] [--json PATH]

Every runner starts the same idle service (``benchmarks/apps/bench_app.py``: main
writes "ready", flushed, as its first action, then waits forever):

* ``baseline``: ``asyncio.run(main())`` (or ``uvloop.run``), main installs
  ``loop.add_signal_handler`` for SIGTERM/SIGINT, says ready, returns on the signal;
* ``aiorun``: ``aiorun.run(main(), stop_on_unhandled_errors=True)``;
* ``graceful``: ``python -m graceful --loop L --log-level WARNING bench_app:main``.

Two numbers per run, measured in this process with ``time.perf_counter``:

* start-up: from just before ``Popen`` to the "ready" line read from the pipe;
* SIGTERM-to-exit: from ``os.kill(pid, SIGTERM)`` (sent as soon as "ready" is
  read) to the exit seen through a pidfd (``Popen.wait(timeout=...)`` polls with
  sleeps of up to 50 ms, which would blur the result).

The runs are interleaved round-robin (A, B, C, A, B, C, ...) after one unrecorded
warm-up round, so drift of the machine hits every runner alike. Every wait is
bounded; a child still alive at the end of a run is killed.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import select
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from _common import BenchError, available_loops, child_env, fmt_ratio, read_line, spread

APPS = Path(__file__).resolve().parent / "apps"
READY_TIMEOUT = 20.0
EXIT_TIMEOUT = 20.0
KILL_TIMEOUT = 5.0
STARTUP_TARGET = 1.03
"""graceful's start-up median may be at most this multiple of the baseline's (same loop)."""
QUICK_RUNS = 3
DEFAULT_RUNS = 30


@dataclass(frozen=True)
class Runner:
    name: str
    kind: str  # baseline | aiorun | graceful
    loop: str  # asyncio | uvloop
    argv: list[str]


@dataclass
class Sample:
    runner: str
    round: int
    startup_s: float | None = None
    exit_s: float | None = None
    returncode: int | None = None
    error: str | None = None


@dataclass
class Summary:
    runner: str
    ok: int
    failed: int
    startup_ms: list[float] = field(default_factory=list)
    exit_ms: list[float] = field(default_factory=list)

    def startup_median(self) -> float | None:
        return statistics.median(self.startup_ms) if self.startup_ms else None

    def exit_median(self) -> float | None:
        return statistics.median(self.exit_ms) if self.exit_ms else None


def make_runners(loops: list[str]) -> list[Runner]:
    py = sys.executable
    runners = []
    for loop in loops:
        runners += [
            Runner(f"baseline ({loop})", "baseline", loop, [py, "bench_baseline_app.py", loop]),
            Runner(f"aiorun ({loop})", "aiorun", loop, [py, "bench_aiorun_app.py", loop]),
            Runner(
                f"graceful ({loop})",
                "graceful",
                loop,
                [
                    py,
                    "-m",
                    "graceful",
                    "--loop",
                    loop,
                    "--log-level",
                    "WARNING",
                    "bench_graceful_app:main",
                ],
            ),
        ]
    return runners


def wait_exit(proc: subprocess.Popen[bytes], timeout: float) -> int:
    """Wait for the child's exit, noticing it at once; at most ``timeout`` seconds."""
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # no pidfd here: fall back to Popen's polling wait
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise BenchError(f"still running {timeout:g} s after SIGTERM") from None
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        if not poller.poll(timeout * 1000):
            raise BenchError(f"still running {timeout:g} s after SIGTERM")
    finally:
        os.close(pidfd)
    return proc.wait(KILL_TIMEOUT)  # it has exited: this only reaps it


def run_once(runner: Runner, round_no: int) -> Sample:
    sample = Sample(runner.name, round_no)
    env = child_env()
    with tempfile.TemporaryFile() as err:
        proc: subprocess.Popen[bytes] | None = None
        try:
            t0 = time.perf_counter()
            proc = subprocess.Popen(
                runner.argv,
                cwd=APPS,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err,
                bufsize=0,
            )
            assert proc.stdout is not None
            line = read_line(proc.stdout, READY_TIMEOUT)
            t_ready = time.perf_counter()
            if line != b"ready":
                raise BenchError(f"expected 'ready', got {line!r}")
            t1 = time.perf_counter()
            os.kill(proc.pid, signal.SIGTERM)
            code = wait_exit(proc, EXIT_TIMEOUT)
            t2 = time.perf_counter()
            sample.returncode = code
            if code != 0:
                raise BenchError(f"exit code {code} after SIGTERM")
            sample.startup_s = t_ready - t0
            sample.exit_s = t2 - t1
        except (BenchError, OSError) as exc:
            err.seek(0)
            tail = err.read()[-2000:].decode(errors="replace").strip()
            sample.error = str(exc) + (f"; stderr: {tail}" if tail else "")
        finally:
            if proc is not None:
                kill_leftover(proc)
    return sample


def kill_leftover(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(KILL_TIMEOUT)
    if proc.stdout is not None:
        proc.stdout.close()


def interleaved(runners: list[Runner], rounds: int) -> Iterator[tuple[int, Runner]]:
    for round_no in range(rounds):
        for runner in runners:
            yield round_no, runner


def summarize(runners: list[Runner], samples: list[Sample]) -> dict[str, Summary]:
    out = {r.name: Summary(r.name, 0, 0) for r in runners}
    for s in samples:
        summary = out[s.runner]
        if s.error is not None or s.startup_s is None or s.exit_s is None:
            summary.failed += 1
            continue
        summary.ok += 1
        summary.startup_ms.append(s.startup_s * 1000)
        summary.exit_ms.append(s.exit_s * 1000)
    return out


def fmt_ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def report(runners: list[Runner], summaries: dict[str, Summary], rounds: int) -> list[str]:
    """Print the tables and the targets; return the targets missed (or not measurable)."""
    by_kind = {(r.kind, r.loop): summaries[r.name] for r in runners}
    print(f"Python {platform.python_version()} ({platform.python_implementation()})", end="")
    print(f" on {platform.system()} {platform.release()} {platform.machine()},", end="")
    print(f" {os.cpu_count()} CPUs")
    print(f"Command: {shlex.join([sys.executable, *sys.argv])}")
    print(
        f"{rounds} runs per runner, interleaved round-robin after 1 warm-up round;"
        " graceful runs with --log-level WARNING (the other runners print nothing either)."
    )
    print()
    print(
        "| runner | start-up median ms | ratio vs baseline | SIGTERM-to-exit median ms | ratio vs aiorun |"
    )
    print("|---|---:|---:|---:|---:|")
    for r in runners:
        s = summaries[r.name]
        base = by_kind.get(("baseline", r.loop))
        aio = by_kind.get(("aiorun", r.loop))
        start, stop = s.startup_median(), s.exit_median()
        print(
            f"| {r.name} | {fmt_ms(start)} | "
            f"{fmt_ratio(start, base.startup_median() if base else None)} | "
            f"{fmt_ms(stop)} | {fmt_ratio(stop, aio.exit_median() if aio else None)} |"
        )
    print()
    print("Spread (ms, min / p10 / p90 / max) and runs that failed:")
    print()
    print("| runner | start-up | SIGTERM-to-exit | ok | failed |")
    print("|---|---|---|---:|---:|")
    for r in runners:
        s = summaries[r.name]
        print(f"| {r.name} | {spread(s.startup_ms)} | {spread(s.exit_ms)} | {s.ok} | {s.failed} |")
    print()
    print("Runner commands (cwd benchmarks/apps):")
    for r in runners:
        print(f"  {r.name}: {shlex.join(r.argv)}")
    print()

    missed = []
    print("Targets:")
    for loop in dict.fromkeys(r.loop for r in runners):
        g, a, b = (by_kind.get((k, loop)) for k in ("graceful", "aiorun", "baseline"))
        g_stop, a_stop = (x.exit_median() if x else None for x in (g, a))
        g_start, b_start = (x.startup_median() if x else None for x in (g, b))
        checks = [
            (
                f"graceful SIGTERM-to-exit median <= aiorun's ({loop})",
                g_stop,
                a_stop,
                g_stop is not None and a_stop is not None and g_stop <= a_stop,
            ),
            (
                f"graceful start-up median <= {STARTUP_TARGET:.2f}x baseline's ({loop})",
                g_start,
                b_start,
                g_start is not None and b_start is not None and g_start <= STARTUP_TARGET * b_start,
            ),
        ]
        for what, mine, ref, met in checks:
            print(
                f"  [{'met' if met else 'MISSED'}] {what}:"
                f" {fmt_ms(mine)} ms vs {fmt_ms(ref)} ms ({fmt_ratio(mine, ref, 3)})"
            )
            if not met:
                missed.append(what)
    return missed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--runs", type=int, help=f"measured runs per runner (default {DEFAULT_RUNS})"
    )
    parser.add_argument(
        "--quick", action="store_true", help=f"smoke test: {QUICK_RUNS} runs per runner"
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the raw results")
    parser.add_argument(
        "--loops", choices=("both", "asyncio", "uvloop"), default="both", help="default both"
    )
    args = parser.parse_args(argv)
    rounds = args.runs if args.runs is not None else QUICK_RUNS if args.quick else DEFAULT_RUNS
    if rounds < 1:
        parser.error("--runs must be at least 1")
    if importlib.util.find_spec("aiorun") is None:
        sys.exit("aiorun is not installed: pip install aiorun (or pip install -e '.[dev]')")

    runners = make_runners(available_loops(args.loops))
    for _round, runner in interleaved(runners, 1):  # warm-up: .pyc files, page cache
        warm = run_once(runner, -1)
        if warm.error is not None:
            print(f"warm-up of {runner.name} failed: {warm.error}", file=sys.stderr)
    samples: list[Sample] = []
    total = rounds * len(runners)
    for i, (round_no, runner) in enumerate(interleaved(runners, rounds), 1):
        sample = run_once(runner, round_no)
        samples.append(sample)
        if sample.error is not None:
            print(f"run {round_no} of {runner.name} failed: {sample.error}", file=sys.stderr)
        if sys.stderr.isatty():
            print(f"\r{i}/{total} runs", end="", file=sys.stderr, flush=True)
    if sys.stderr.isatty():
        print(file=sys.stderr)

    summaries = summarize(runners, samples)
    missed = report(runners, summaries, rounds)
    if args.json is not None:
        result: dict[str, Any] = {
            "python": sys.version,
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "command": [sys.executable, *sys.argv],
            "runs_per_runner": rounds,
            "runners": [asdict(r) for r in runners],
            "samples": [asdict(s) for s in samples],
            "medians_ms": {
                name: {"startup": s.startup_median(), "sigterm_to_exit": s.exit_median()}
                for name, s in summaries.items()
            },
            "targets_missed": missed,
        }
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"\nRaw results written to {args.json}")
    failed = sum(s.failed for s in summaries.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
