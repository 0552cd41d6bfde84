"""graceful's side of ``benchmarks/bench_supervisor.py``: the app starts BENCH_WORKERS
copies of ``bench_worker.py`` under its own supervisor and waits for the stop."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import graceful

WORKER = str(Path(__file__).with_name("bench_worker.py"))


async def main() -> None:
    report = os.environ["BENCH_SOCKET"]
    for i in range(int(os.environ["BENCH_WORKERS"])):
        graceful.spawn([sys.executable, WORKER, report], name=f"w{i:02d}")
    await graceful.wait_for_shutdown()
