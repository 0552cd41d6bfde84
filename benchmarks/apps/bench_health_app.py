"""Apps measured by ``benchmarks/bench_health.py``.

``spin``: after "ready", counts ``await asyncio.sleep(0)`` for ``SPIN_SECONDS``
and prints ``rate WALL CPU``: iterations per second of wall time, and per second
of the process's CPU time (all its threads: the loop's, and the health server's
and watchdog's when they are on), then waits to be stopped.

``spin_windows``: the same in windows, so that one process can be measured probed
and not probed in turn.

``busy``: keeps its loop busy with pure-Python work in slices of ``SLICE_MS``
(yielding with ``await asyncio.sleep(0)`` between slices) until stopped. With
``BENCH_CHECK=1`` it also registers one trivial readiness check, which has to wait
for a free moment of the busy loop.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

import graceful


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def count_sleeps(seconds: float) -> tuple[float, float]:
    """Spin on ``await asyncio.sleep(0)`` for ``seconds``: iterations per wall second
    and per CPU second."""
    count = 0
    cpu_start = time.process_time()
    start = time.perf_counter()
    end = start + seconds
    while True:
        for _ in range(1000):
            await asyncio.sleep(0)
        count += 1000
        now = time.perf_counter()
        if now >= end:
            break
    return count / (now - start), count / (time.process_time() - cpu_start)


async def spin() -> None:
    seconds = float(os.environ.get("SPIN_SECONDS", "1"))
    say("ready")
    wall, cpu = await count_sleeps(seconds)
    say(f"rate {wall:.1f} {cpu:.1f}")
    await asyncio.Event().wait()  # until stopped: a probe now still finds it ready


async def spin_windows() -> None:
    """``SPIN_WINDOWS`` windows of ``WINDOW_SECONDS`` each: prints ``window I`` as one
    starts and ``rate I WALL CPU`` as it ends (the harness probes in every other one),
    then waits to be stopped."""
    windows = int(os.environ.get("SPIN_WINDOWS", "10"))
    seconds = float(os.environ.get("WINDOW_SECONDS", "0.5"))
    say("ready")
    for index in range(windows):
        say(f"window {index}")
        wall, cpu = await count_sleeps(seconds)
        say(f"rate {index} {wall:.1f} {cpu:.1f}")
    await asyncio.Event().wait()


if os.environ.get("BENCH_CHECK") == "1":

    @graceful.readiness_check(timeout=1.0)
    async def trivial() -> None:
        pass


async def busy() -> None:
    slice_s = float(os.environ.get("SLICE_MS", "5")) / 1000
    say("ready")
    while True:
        end = time.perf_counter() + slice_s
        while time.perf_counter() < end:
            sum(range(100))
        await asyncio.sleep(0)
