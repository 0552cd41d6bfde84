"""Web servers under graceful against the same servers run their own way.

    python benchmarks/bench_servers.py [--rounds 5] [--seconds 5] [--connections 32]

Two figures per runner, the runners interleaved round-robin in one run:

* requests per second of a small "hello" app, measured by wrk (Debian's package,
  installed with apt-get when missing) with ``--connections`` keep-alive
  connections for ``--seconds``, after a one-second warm-up;
* the server's CPU time (user + system, every thread, from ``/proc/PID/stat``) per
  10,000 requests of that run: the figure the target is set on, as a shared machine
  moves requests per second by 20 % between runs, and CPU time per request far less;
* SIGTERM to exit of the idle server (no request in flight), seen through a pidfd.

Runners: uvicorn's own CLI (``python -m uvicorn examples.hello_asgi:app``) and
``python -m graceful examples.web_uvicorn:main``; hypercorn's own CLI and
``python -m graceful examples.web_hypercorn:main``; aiohttp's ``web.run_app`` and
``python -m graceful examples.web_aiohttp:main``. All on the same event loop
(uvloop when installed, as uvicorn and graceful choose by default; asyncio for
aiohttp's ``run_app``, which is what it uses), the same logging settings on both
sides (uvicorn: level warning with its access log left on, as in the example;
aiohttp: no access log); hypercorn's CLI and graceful's hypercorn example on asyncio,
neither with an access log. Target: graceful within 2 % of the server's own CPU time
per request.

With two CPUs or more the server runs on CPU 0 and wrk on CPU 1 (``taskset``), so that
the scheduler does not move them onto one core for part of a run; the ratios are the
medians of each round's ratio (the two runners of a pair run one after the other), which
cancels the drift of a shared machine between rounds. ``--no-pin`` lets them float.
"""

from __future__ import annotations

import argparse
import os
import re
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from _common import BenchError, child_env, free_ports

ROOT = Path(__file__).resolve().parent.parent
AIOHTTP_OWN_WAY = """
import os
from aiohttp import web
from examples.web_aiohttp import make_app
web.run_app(make_app(), host="127.0.0.1", port=int(os.environ["PORT"]), access_log=None,
            print=None)
"""


@dataclass
class Runner:
    name: str
    server: str  # the pair it is compared within
    argv: list[str]
    rps: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)  # CPU ms per 10k requests
    stop_ms: list[float] = field(default_factory=list)


def runners() -> list[Runner]:
    py = sys.executable
    return [
        Runner(
            "uvicorn, its own way",
            "uvicorn",
            [
                py,
                "-m",
                "uvicorn",
                "examples.hello_asgi:app",
                "--host",
                "127.0.0.1",
                "--port",
                "{port}",
                "--log-level",
                "warning",
            ],
        ),  # fmt: skip
        Runner(
            "uvicorn under graceful",
            "uvicorn",
            [py, "-m", "graceful", "--log-level", "WARNING", "examples.web_uvicorn:main"],
        ),
        Runner(
            "hypercorn, its own way",
            "hypercorn",
            # --workers 0: serve in this process, as graceful does (1 forks a worker)
            [
                py,
                "-m",
                "hypercorn",
                "examples.hello_asgi:app",
                "--bind",
                "127.0.0.1:{port}",
                "--workers",
                "0",
            ],
        ),
        Runner(
            "hypercorn under graceful",
            "hypercorn",
            [
                py,
                "-m",
                "graceful",
                "--log-level",
                "WARNING",
                "--loop",
                "asyncio",
                "examples.web_hypercorn:main",
            ],
        ),  # fmt: skip
        Runner("aiohttp, its own way", "aiohttp", [py, "-c", AIOHTTP_OWN_WAY]),
        Runner(
            "aiohttp under graceful",
            "aiohttp",
            [
                py,
                "-m",
                "graceful",
                "--log-level",
                "WARNING",
                "--loop",
                "asyncio",
                "examples.web_aiohttp:main",
            ],
        ),  # fmt: skip
    ]


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    import _common

    if not _common.apt_install(["wrk"]) or not shutil.which("wrk"):
        raise BenchError("wrk is missing and apt-get could not install it")
    return str(shutil.which("wrk"))


def free_port() -> int:
    return free_ports(1)[0]


def wait_serving(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise BenchError(f"the server exited with {proc.returncode} before serving")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
                if s.recv(12).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            time.sleep(0.02)
    raise BenchError(f"nothing served on port {port} within {timeout:g} s")


def wrk_rps(
    wrk: str, port: int, seconds: float, connections: int, args: argparse.Namespace
) -> tuple[float, int]:
    """Requests per second, and the number of requests served."""
    out = subprocess.run(
        pinned(
            1,
            [
                wrk,
                "-t",
                "1",
                "-c",
                str(connections),
                "-d",
                f"{seconds:g}s",
                f"http://127.0.0.1:{port}/",
            ],
            args,
        ),
        capture_output=True,
        text=True,
        timeout=seconds + 30,
    ).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not match:
        raise BenchError(f"wrk printed no rate:\n{out}")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: .*", out)
    if errors:
        raise BenchError(f"wrk saw errors: {errors.group(0)}")
    total = re.search(r"(\d+) requests in", out)
    if not total:
        raise BenchError(f"wrk printed no request count:\n{out}")
    return float(match.group(1)), int(total.group(1))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop_ms(proc: subprocess.Popen[bytes]) -> float:
    fd = os.pidfd_open(proc.pid)
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        started = time.perf_counter()
        proc.send_signal(signal.SIGTERM)
        if not poller.poll(30_000):
            raise BenchError("still running 30 s after SIGTERM")
        took = (time.perf_counter() - started) * 1000
    finally:
        os.close(fd)
    proc.wait(10)
    return took


def pinned(cpu: int, argv: list[str], args: argparse.Namespace) -> list[str]:
    return ["taskset", "-c", str(cpu), *argv] if args.pin else argv


def measure(runner: Runner, wrk: str, args: argparse.Namespace) -> None:
    port = free_port()
    argv = pinned(0, [a.replace("{port}", str(port)) for a in runner.argv], args)
    env = {**child_env(), "PORT": str(port), "HOST": "127.0.0.1"}
    proc = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_serving(port, proc)
        wrk_rps(wrk, port, 1, args.connections, args)  # warm-up
        cpu = cpu_seconds(proc.pid)
        rps, served = wrk_rps(wrk, port, args.seconds, args.connections, args)
        runner.cpu_ms.append((cpu_seconds(proc.pid) - cpu) * 1000 / served * 10_000)
        runner.rps.append(rps)
        runner.stop_ms.append(stop_ms(proc))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def report(all_runners: list[Runner], args: argparse.Namespace) -> bool:
    pin = "server on CPU 0, wrk on CPU 1" if args.pin else "not pinned"
    print(
        f"wrk, 1 thread, {args.connections} keep-alive connections, {args.seconds:g} s per"
        f" run; {args.rounds} runs per runner, interleaved ({pin}); medians, and ratios"
        " as the median of each round's ratio\n"
    )
    print(
        "| runner | requests/s | vs its own way | CPU ms per 10k requests | vs its own way"
        " | SIGTERM to exit (idle) ms | vs its own way |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    met = True
    own: dict[str, Runner] = {}

    def ratio(mine: list[float], theirs: list[float]) -> float:
        return statistics.median(a / b for a, b in zip(mine, theirs, strict=True))

    for r in all_runners:
        base = own.setdefault(r.server, r)
        cpu_ratio = ratio(r.cpu_ms, base.cpu_ms)
        print(
            f"| {r.name} | {statistics.median(r.rps):,.0f} | {ratio(r.rps, base.rps):.3f}x"
            f" | {statistics.median(r.cpu_ms):.0f} | {cpu_ratio:.3f}x"
            f" | {statistics.median(r.stop_ms):.1f} | {ratio(r.stop_ms, base.stop_ms):.2f}x |"
        )
        if base is not r and cpu_ratio > 1.02:
            met = False
    print(
        "\nTarget (CPU time per request within 2 % of the server's own way):"
        f" {'met' if met else 'MISSED'}"
    )
    return met


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--no-pin",
        dest="pin",
        action="store_false",
        default=(os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None,
        help="let the server and wrk share the CPUs as the scheduler likes",
    )
    args = parser.parse_args(argv)
    try:
        wrk = ensure_wrk()
        all_runners = runners()
        for _ in range(args.rounds):
            for runner in all_runners:
                measure(runner, wrk, args)
    except BenchError as exc:
        print(f"bench_servers: {exc}", file=sys.stderr)
        return 2
    report(all_runners, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
