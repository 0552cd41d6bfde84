"""Rolling restarts behind a real load balancer: how many requests fail?

    python benchmarks/rolling.py [--replicas 3] [--rounds 2] [--concurrency 16]
                                 [--drain-delay 1] [--check] [--json PATH] [--trace]

haproxy (installed with apt-get when missing; its config written here, everything
on 127.0.0.1) balances N replicas of a small uvicorn service and health-checks them
every 200 ms (``fall 1 rise 2``) with no retries, so every refused or cut request
reaches the client. An asyncio client (aiohttp) keeps ``--concurrency`` requests in
flight through haproxy while every replica in turn is stopped with SIGTERM, waited
for (and for haproxy to see it go), started again, and waited for until haproxy's
check of it passes; ``--rounds`` times. (haproxy starts every server UP before its
first check, and shows a stopped one UP until its next check: neither counts as up
here, or two replicas would be out at once and every request would fail.)

Three configurations, side by side in one run (round-robin, same load):

* ``uvicorn alone``: ``python -m uvicorn`` (the server its own way), checked on ``/``;
* ``graceful``: ``python -m graceful --health-port H`` with the uvicorn integration,
  checked on ``/readyz``, no drain delay;
* ``graceful + drain``: the same with ``--drain-delay`` (default 1 s: at least the
  balancer's detection time, 200 ms x 1 here, plus its propagation).

Failed requests are classified from haproxy's own log (its termination state):
refused (the server refused the connection), reset (the server closed or reset it
mid-request), other 5xx. ``--check`` exits 1 unless ``graceful + drain`` failed
none and ``uvicorn alone`` failed some (the measurement can tell them apart), and
then prints what happened in the failing runs, in order: the restarts, haproxy's view
of each replica and the failed requests in runs; ``--trace`` prints it always.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from _common import BenchError, child_env, free_ports

ROOT = Path(__file__).resolve().parent.parent
CHECK_INTER_MS = 200
START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0
GRACE = 10.0
RUN_GAP = 0.1  # failed requests further apart than this are reported as separate runs


@dataclass
class Config:
    name: str
    graceful: bool
    drain_delay: float = 0.0


@dataclass
class Result:
    config: str
    sent: int = 0
    ok: int = 0
    failed: dict[str, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    stop_s: list[float] = field(default_factory=list)
    restarts: int = 0
    # (unix time, what happened): the restarts, haproxy's view of each server, and
    # the failed requests in runs; printed when --check fails, and with --trace.
    timeline: list[tuple[float, str]] = field(default_factory=list)

    def event(self, what: str) -> None:
        self.timeline.append((time.time(), what))

    @property
    def failed_total(self) -> int:
        return sum(self.failed.values())


def ensure_haproxy() -> str:
    found = shutil.which("haproxy")
    if found:
        return found
    if os.geteuid() != 0:
        raise BenchError("haproxy is missing; install it (apt-get install haproxy) or run as root")
    print("installing haproxy with apt-get ...", file=sys.stderr)
    subprocess.run(
        ["apt-get", "install", "-y", "-o", "DPkg::Lock::Timeout=300", "haproxy"],
        check=True,
        capture_output=True,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )
    found = shutil.which("haproxy")
    if not found:
        raise BenchError("apt-get installed haproxy, but it is not on PATH")
    return found


class Replica:
    def __init__(self, config: Config, index: int, port: int, health_port: int) -> None:
        self.config, self.index, self.port, self.health_port = config, index, port, health_port
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def check_port(self) -> int:
        return self.health_port if self.config.graceful else self.port

    @property
    def check_path(self) -> str:
        return "/readyz" if self.config.graceful else "/"

    def argv(self) -> list[str]:
        if not self.config.graceful:
            return [
                sys.executable, "-m", "uvicorn", "examples.hello_asgi:app",
                "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning",
            ]  # fmt: skip
        return [
            sys.executable, "-m", "graceful", "--grace", str(GRACE),
            "--drain-delay", str(self.config.drain_delay),
            "--health-port", str(self.health_port), "--health-host", "127.0.0.1",
            "--log-level", "WARNING", "examples.web_uvicorn:main",
        ]  # fmt: skip

    def start(self) -> None:
        env = {**child_env(), "PORT": str(self.port), "HOST": "127.0.0.1"}
        self.proc = subprocess.Popen(
            self.argv(), cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    async def stop(self) -> float:
        """SIGTERM, then wait for the exit; the seconds it took."""
        assert self.proc is not None
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        while self.proc.poll() is None:
            if time.monotonic() - started > STOP_TIMEOUT:
                self.proc.kill()
                raise BenchError(f"{self.config.name} replica {self.index} ignored SIGTERM")
            await asyncio.sleep(0.005)
        return time.monotonic() - started

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


class HAProxy:
    def __init__(self, binary: str, workdir: Path, port: int, replicas: list[Replica]) -> None:
        self.binary, self.workdir, self.port, self.replicas = binary, workdir, port, replicas
        self.stats = workdir / "stats.sock"
        self.log: list[tuple[float, str]] = []  # (arrival time, line)
        self.proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    def config(self) -> str:
        servers = "\n".join(
            f"    server r{r.index} 127.0.0.1:{r.port} check port {r.check_port}"
            f" inter {CHECK_INTER_MS} fall 1 rise 2"
            for r in self.replicas
        )
        path = self.replicas[0].check_path
        return f"""global
    stats socket {self.stats} mode 600 level admin
    log stdout format raw local0

defaults
    mode http
    log global
    log-format "%ST %tsc %s %Ta %Ts.%ms"
    retries 0
    timeout connect 2s
    timeout client 30s
    timeout server 30s

frontend web
    bind 127.0.0.1:{self.port}
    default_backend replicas

backend replicas
    balance roundrobin
    option httpchk GET {path}
{servers}
"""

    async def start(self) -> None:
        path = self.workdir / "haproxy.cfg"
        path.write_text(self.config())
        check = await asyncio.create_subprocess_exec(
            self.binary, "-c", "-f", str(path),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        said, _ = await check.communicate()
        if check.returncode != 0:
            raise BenchError(f"haproxy refused its config: {said.decode(errors='replace')}")
        self.proc = await asyncio.create_subprocess_exec(
            self.binary, "-db", "-f", str(path),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        self._reader = asyncio.ensure_future(self._read_log())

    async def _read_log(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for line in self.proc.stdout:
            self.log.append((time.time(), line.decode(errors="replace").strip()))

    async def status(self) -> dict[str, str]:
        """Server name -> status as haproxy's health checks see it.

        haproxy starts every server UP, before its first check: that is reported as
        "UP unchecked", so that "UP" always means a check has passed."""
        reader, writer = await asyncio.open_unix_connection(str(self.stats))
        writer.write(b"show stat\n")
        await writer.drain()
        data = (await reader.read()).decode()
        writer.close()
        states = {}
        lines = data.splitlines()
        header = lines[0].lstrip("# ").split(",") if lines else []
        for row in lines[1:]:
            cols = row.split(",")
            if len(cols) == len(header) and cols[0] == "replicas" and cols[1].startswith("r"):
                status = cols[header.index("status")]
                if status == "UP" and "L7OK" not in cols[header.index("check_status")]:
                    status = "UP unchecked"
                states[cols[1]] = status
        return states

    async def wait_up(self, names: list[str]) -> None:
        for name in names:
            await self.wait_for(name, lambda status: status == "UP")

    async def wait_for(self, name: str, wanted: Callable[[str], bool]) -> None:
        """Until haproxy's status of server ``name`` is ``wanted``."""
        end = time.monotonic() + START_TIMEOUT
        status = "?"
        while True:
            with contextlib.suppress(OSError):
                status = (await self.status()).get(name, "?")
                if wanted(status):
                    return
            if time.monotonic() > end:
                raise BenchError(f"haproxy still shows {name} {status} after {START_TIMEOUT:g} s")
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            await asyncio.wait_for(self.proc.wait(), 10)
        if self._reader is not None:
            await asyncio.wait_for(self._reader, 10)

    def failures(self, timeline: list[tuple[float, str]]) -> Counter[str]:
        """Failed requests by kind, from the termination state of each logged request.
        Adds haproxy's server state changes, and the failures in runs (same server and
        state, less than RUN_GAP apart), to ``timeline``."""
        kinds: Counter[str] = Counter()
        runs: dict[tuple[str, str], list[float]] = {}  # -> [first, last, count]

        def close(key: tuple[str, str]) -> None:
            first, last, count = runs.pop(key)
            server, state = key
            what = f"{int(count)} failed ({state}) on {server} within {last - first:.3f} s"
            timeline.append((first, what))

        for arrived, line in self.log:
            parts = line.split()
            if len(parts) < 2 or not parts[0].isdigit():
                if line.startswith(("Server ", "backend ")):
                    timeline.append((arrived, "haproxy: " + line.split(". ", 1)[0]))
                continue
            status, state = int(parts[0]), parts[1]
            if status < 500:
                continue
            at = float(parts[4]) if len(parts) > 4 else arrived  # when haproxy accepted it
            key = (parts[2] if len(parts) > 2 else "?", f"{status} {state}")
            run = runs.get(key)
            if run is not None and abs(at - run[1]) > RUN_GAP:
                close(key)
                run = None
            if run is None:
                runs[key] = [at, at, 1]
            else:
                run[0], run[1], run[2] = min(run[0], at), max(run[1], at), run[2] + 1
            if state.startswith("SC"):
                kinds["refused"] += 1
            elif state[:1] in ("S", "s") or state.startswith("SH") or state.startswith("SD"):
                kinds["reset"] += 1
            else:
                kinds[f"{status} {state}"] += 1
        for key in list(runs):
            close(key)
        return kinds


async def load(port: int, concurrency: int, stop: asyncio.Event, result: Result) -> None:
    import aiohttp

    url = f"http://127.0.0.1:{port}/"
    client_errors: Counter[str] = Counter()

    async def worker(session: aiohttp.ClientSession) -> None:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                async with session.get(url) as response:
                    await response.read()
                    result.sent += 1
                    if response.status == 200:
                        result.ok += 1
                        result.latencies_ms.append((time.perf_counter() - started) * 1000)
            except aiohttp.ClientError as exc:
                result.sent += 1
                client_errors[f"client {type(exc).__name__}"] += 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    for kind, count in client_errors.items():
        result.failed[kind] = result.failed.get(kind, 0) + count


async def roll(config: Config, args: argparse.Namespace, haproxy_bin: str) -> Result:
    result = Result(config.name)
    ports = free_ports(2 * args.replicas + 1)
    replicas = [Replica(config, i, ports[2 * i], ports[2 * i + 1]) for i in range(args.replicas)]
    with tempfile.TemporaryDirectory(prefix="graceful-rolling-") as tmp:
        balancer = HAProxy(haproxy_bin, Path(tmp), ports[-1], replicas)
        try:
            for replica in replicas:
                replica.start()
            await balancer.start()
            await balancer.wait_up([f"r{r.index}" for r in replicas])
            result.event("every replica UP in haproxy; the load starts")
            stop = asyncio.Event()
            traffic = asyncio.ensure_future(load(balancer.port, args.concurrency, stop, result))
            for _ in range(args.rounds):
                for replica in replicas:
                    name = f"r{replica.index}"
                    result.event(f"SIGTERM to {name}")
                    result.stop_s.append(await replica.stop())
                    result.event(f"{name} exited")
                    # Until haproxy's next check it may still show the old process
                    # UP: wait for it to notice, or the next stop would overlap.
                    await balancer.wait_for(name, lambda status: status != "UP")
                    replica.start()
                    result.event(f"{name} started")
                    await balancer.wait_for(name, lambda status: status == "UP")
                    result.event(f"{name} UP in haproxy")
                    result.restarts += 1
            stop.set()
            await asyncio.wait_for(traffic, 60)
        finally:
            for replica in replicas:
                replica.kill()
            await balancer.stop()
        for kind, count in balancer.failures(result.timeline).items():
            result.failed[kind] = result.failed.get(kind, 0) + count
    return result


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(results: list[Result], args: argparse.Namespace) -> None:
    print(
        f"{args.replicas} replicas behind haproxy (checks every {CHECK_INTER_MS} ms, fall 1,"
        f" rise 2, no retries), {args.concurrency} requests in flight, {args.rounds} rolling"
        f" restart(s) of every replica per configuration, interleaved; drain delay"
        f" {args.drain_delay:g} s\n"
    )
    print(
        "| configuration | restarts | requests | failed | refused | reset | other | p50 ms | p99 ms | stop median s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        other = r.failed_total - r.failed.get("refused", 0) - r.failed.get("reset", 0)
        print(
            f"| {r.config} | {r.restarts} | {r.sent} | {r.failed_total} | {r.failed.get('refused', 0)}"
            f" | {r.failed.get('reset', 0)} | {other} | {pct(r.latencies_ms, 0.5):.1f}"
            f" | {pct(r.latencies_ms, 0.99):.1f} | {statistics.median(r.stop_s):.2f} |"
        )


def print_timeline(result: Result) -> None:
    """What happened in each of the configuration's runs, in order, on stderr."""
    print(f"timeline of {result.config} (s from its first event):", file=sys.stderr)
    if not result.timeline:
        return
    start = result.timeline[0][0]
    for at, what in sorted(result.timeline, key=lambda item: item[0]):
        print(f"  {at - start:8.3f}  {what}", file=sys.stderr)


def merge(into: Result, part: Result) -> None:
    into.sent += part.sent
    into.ok += part.ok
    into.restarts += part.restarts
    into.latencies_ms += part.latencies_ms
    into.stop_s += part.stop_s
    into.timeline += part.timeline
    for kind, count in part.failed.items():
        into.failed[kind] = into.failed.get(kind, 0) + count


def configurations(drain_delay: float) -> list[Config]:
    return [
        Config("uvicorn alone", graceful=False),
        Config("graceful", graceful=True),
        Config("graceful + drain", graceful=True, drain_delay=drain_delay),
    ]


def wanted_configs(spec: str) -> list[str]:
    return [w.strip() for w in spec.split(",")]


async def main_async(args: argparse.Namespace) -> tuple[int, list[Result]]:
    haproxy_bin = ensure_haproxy()
    configs = configurations(args.drain_delay)
    if args.configs:
        wanted = wanted_configs(args.configs)
        configs = [c for c in configs if c.name in wanted]
    totals = {c.name: Result(c.name) for c in configs}
    for _ in range(args.repeat):  # round-robin over the configurations
        for config in configs:
            merge(totals[config.name], await roll(config, args, haproxy_bin))
    results = list(totals.values())
    report(results, args)
    if args.trace:
        for result in results:
            print_timeline(result)
    if args.check:
        alone, drained = totals.get("uvicorn alone"), totals.get("graceful + drain")
        if alone is None or drained is None:
            print("--check needs both 'uvicorn alone' and 'graceful + drain'", file=sys.stderr)
            return 2, results
        if drained.failed_total or not alone.failed_total or not drained.ok:
            print(
                f"check FAILED: graceful + drain failed {drained.failed_total} (want 0),"
                f" uvicorn alone failed {alone.failed_total} (want > 0)",
                file=sys.stderr,
            )
            if drained.failed_total:
                print_timeline(drained)
            return 1, results
        print("check passed: 0 failed with graceful's drain; the server alone failed some")
    return 0, results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2, help="rolling restarts per repeat")
    parser.add_argument("--repeat", type=int, default=1, help="times over all configurations")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--drain-delay", type=float, default=1.0)
    parser.add_argument("--configs", help="comma-separated names, default: all three")
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--json")
    parser.add_argument(
        "--trace", action="store_true", help="print every configuration's timeline on stderr"
    )
    args = parser.parse_args(argv)
    for name in ("replicas", "rounds", "repeat", "concurrency"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    if not 0 <= args.drain_delay <= GRACE / 2:
        parser.error(f"--drain-delay must be between 0 and {GRACE / 2:g} s, got {args.drain_delay}")
    if args.configs:
        names = [c.name for c in configurations(0)]
        unknown = [w for w in wanted_configs(args.configs) if w not in names]
        if unknown:
            parser.error(f"--configs: unknown {unknown}; choose from {names}")
    try:
        code, results = asyncio.run(main_async(args))
    except BenchError as exc:
        print(f"rolling: {exc}", file=sys.stderr)
        return 2
    if args.json:
        payload = [{**asdict(r), "latencies_ms": None, "timeline": None} for r in results]
        Path(args.json).write_text(json.dumps(payload, indent=2))
    return code


if __name__ == "__main__":
    sys.exit(main())
