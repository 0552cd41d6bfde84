"""The output part of ``benchmarks/bench_supervisor.py``: BENCH_WRITERS processes
``cat`` prepared files of numbered lines to stdout as fast as the pipe takes them,
each line goes to logging (a file handler), and a 10 ms timer on the loop records
how late it wakes. Two ways to handle the lines:

* ``supervised``: ``graceful.Supervisor`` (``output="log"``: a thread reads and logs);
* ``on_loop``: asyncio subprocesses whose lines are read with ``readline()`` and
  logged by a coroutine on the loop, the usual hand-written way.

A separate process sleeps 10 ms at a time meanwhile and reports its own worst
lateness: the machine's noise. Prints one JSON line with the figures.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import graceful

PROBE = """
import select, sys, time
worst = 0.0
while True:
    before = time.monotonic()
    if select.select([sys.stdin], [], [], 0.01)[0]:
        break
    worst = max(worst, time.monotonic() - before - 0.01)
print(worst)
"""


async def _measure(handle_lines: object) -> None:
    data = os.environ["BENCH_DATA"]
    files = [Path(data, name) for name in sorted(os.listdir(data)) if name.endswith(".txt")]
    handler = logging.FileHandler(os.environ["BENCH_LOG"])
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    logging.getLogger().addHandler(handler)
    loop = asyncio.get_running_loop()
    lates: list[float] = []
    done = False

    async def ticker() -> None:
        while not done:
            before = loop.time()
            await asyncio.sleep(0.01)
            lates.append(loop.time() - before - 0.01)

    probe = await asyncio.create_subprocess_exec(
        sys.executable, "-c", PROBE, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert probe.stdin is not None and probe.stdout is not None
    tick = asyncio.ensure_future(ticker())
    started = time.monotonic()
    assert callable(handle_lines)
    await handle_lines(files)
    took = time.monotonic() - started
    done = True
    await tick
    probe.stdin.close()
    machine = float(await probe.stdout.read())
    await probe.wait()
    lates.sort()
    result = {
        "worst_s": lates[-1],
        "p99_s": lates[int(len(lates) * 0.99)],
        "median_s": statistics.median(lates),
        "machine_worst_s": machine,
        "took_s": took,
    }
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


async def supervised() -> None:
    async def run(files: list[Path]) -> None:
        async with graceful.Supervisor() as sup:
            for i, path in enumerate(files):
                sup.start(["cat", str(path)], name=f"w{i:02d}", restart="never")
            for managed in sup.processes:
                await managed.wait()

    await _measure(run)


async def on_loop() -> None:
    log = logging.getLogger("graceful.process")

    async def one(i: int, path: Path) -> None:
        proc = await asyncio.create_subprocess_exec("cat", str(path), stdout=subprocess.PIPE)
        assert proc.stdout is not None
        name = f"w{i:02d}"
        while line := await proc.stdout.readline():
            log.info("[%s] %s", name, line.decode(errors="replace").rstrip("\n"))
        await proc.wait()

    async def run(files: list[Path]) -> None:
        await asyncio.gather(*(one(i, path) for i, path in enumerate(files)))

    await _measure(run)
