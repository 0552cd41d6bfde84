"""Idle WebSockets at a stop: graceful's integrations against each server run alone.

    python benchmarks/bench_websockets.py [--rounds 3] [--clients 1000] [--bound 15]

``--clients`` idle WebSocket clients (the ``websockets`` library, one asyncio
process) are connected to ``examples/web_streams.py``'s echo route; then SIGTERM.
Measured per run: the time from the SIGTERM to the close frame reaching the last
client, the close codes seen, and the time to the server's exit. A client still
open ``--bound`` seconds after the signal counts as "still open" and the server is
killed. The runners are interleaved round-robin; medians over the rounds.

Runners: ``python -m graceful examples.web_streams:{uvicorn,hypercorn,aiohttp}_main``
(grace 10 s), and the same app served by uvicorn's CLI, by hypercorn's ``serve()``
with its own signal handling, and by aiohttp's ``web.run_app``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from _common import child_env, free_ports
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

ROOT = Path(__file__).resolve().parent.parent
HYPERCORN_ALONE = """
import asyncio, os
from hypercorn.asyncio import serve
from hypercorn.config import Config
from examples.web_streams import asgi_app
config = Config()
config.bind = [f"127.0.0.1:{os.environ['PORT']}"]
asyncio.run(serve(asgi_app(), config))
"""
AIOHTTP_ALONE = """
import os
from aiohttp import web
from examples.web_streams import aiohttp_app
web.run_app(aiohttp_app(), host="127.0.0.1", port=int(os.environ["PORT"]), print=None)
"""


@dataclass
class Runner:
    name: str
    argv: list[str]
    last_close_ms: list[float] = field(default_factory=list)
    exit_ms: list[float] = field(default_factory=list)
    codes: collections.Counter[str] = field(default_factory=collections.Counter)


def runners() -> list[Runner]:
    py = sys.executable
    graceful = [py, "-m", "graceful", "--grace", "10"]
    return [
        Runner("uvicorn under graceful", [*graceful, "examples.web_streams:uvicorn_main"]),
        Runner(
            "uvicorn alone",
            [py, "-m", "uvicorn", "--factory", "examples.web_streams:asgi_app", "--host",
             "127.0.0.1", "--port", "{port}", "--log-level", "warning"],
        ),
        Runner("hypercorn under graceful", [*graceful, "examples.web_streams:hypercorn_main"]),
        Runner("hypercorn alone", [py, "-c", HYPERCORN_ALONE]),
        Runner("aiohttp under graceful", [*graceful, "examples.web_streams:aiohttp_main"]),
        Runner("aiohttp alone", [py, "-c", AIOHTTP_ALONE]),
    ]  # fmt: skip


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode} before listening")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listens on {port} after {timeout} s")


async def one_run(runner: Runner, clients: int, bound: float) -> None:
    port = free_ports(1)[0]  # the clients' own ports cannot take it
    argv = [a.replace("{port}", str(port)) for a in runner.argv]
    env = {**child_env(), "PORT": str(port), "HOST": "127.0.0.1", "PYTHONPATH": str(ROOT)}
    # Blocking here is fine: nothing else runs on this loop before the clients connect.
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stderr=log)  # noqa: ASYNC220
    try:
        try:
            wait_listening(port, proc)
        except RuntimeError:
            log.seek(0)
            sys.stderr.write(log.read().decode(errors="replace")[-3000:])
            raise
        limit = asyncio.Semaphore(100)  # connect in bursts the backlog can take

        async def client(opened: list[object]) -> tuple[float, str]:
            async with limit:
                ws = await connect(f"ws://127.0.0.1:{port}/ws", open_timeout=30)
            opened.append(ws)
            try:
                await ws.recv()
            except ConnectionClosed as closed:
                code = str(closed.rcvd.code) if closed.rcvd is not None else "no close frame"
                return time.monotonic(), code
            return time.monotonic(), "message"

        opened: list[object] = []
        tasks = [asyncio.ensure_future(client(opened)) for _ in range(clients)]
        while len(opened) < clients:
            if any(t.done() for t in tasks):
                for t in tasks:
                    if t.done() and t.exception() is not None:
                        raise RuntimeError(f"a client failed: {t.exception()!r}")
            await asyncio.sleep(0.01)
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        done, pending = await asyncio.wait(tasks, timeout=bound)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        results = [t.result() for t in done]
        runner.codes.update(code for _, code in results)
        runner.codes["still open"] += len(pending)
        last = max((at for at, _ in results), default=signalled + bound)
        runner.last_close_ms.append(
            (last - signalled) * 1000 if not pending else (bound * 1000 + 1)
        )
        try:
            proc.wait(max(0.0, signalled + bound - time.monotonic()))
            runner.exit_ms.append((time.monotonic() - signalled) * 1000)
        except subprocess.TimeoutExpired:
            runner.exit_ms.append(bound * 1000 + 1)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        log.close()


def fmt(ms: float, bound: float) -> str:
    return f"> {bound:g} s" if ms > bound * 1000 else f"{ms:.0f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--bound", type=float, default=15.0)
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.clients < 1 or args.bound <= 0:
        parser.error("--rounds and --clients must be at least 1, --bound above 0")
    all_runners = runners()
    for n in range(args.rounds):
        for runner in all_runners:
            print(f"round {n + 1}: {runner.name}", file=sys.stderr)
            asyncio.run(one_run(runner, args.clients, args.bound))
    print(
        f"{args.clients} idle WebSocket clients, SIGTERM, {args.rounds} rounds interleaved;"
        f" medians (ms)\n"
    )
    print(
        "| runner | SIGTERM to the last close frame | close codes (all rounds) | SIGTERM to exit |"
    )
    print("|---|---|---|---|")
    for r in all_runners:
        codes = ", ".join(f"{code}: {n}" for code, n in sorted(r.codes.items()) if n)
        print(
            f"| {r.name} | {fmt(statistics.median(r.last_close_ms), args.bound)} | {codes}"
            f" | {fmt(statistics.median(r.exit_ms), args.bound)} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
