"""The idle service measured by ``benchmarks/bench_runtime.py``.

``main`` says it is running (one flushed line on stdout, its first action), then
waits forever: the runner around it has to stop it on SIGTERM. Each runner calls
``save_state`` once on the way out (a sync shutdown hook that does no work: what is
measured is the machinery around it).
"""

from __future__ import annotations

import asyncio
import sys


def say_ready() -> None:
    sys.stdout.write("ready\n")
    sys.stdout.flush()


async def main() -> None:
    say_ready()
    await asyncio.Event().wait()


def save_state() -> None:
    """The service's one (trivial) shutdown hook."""
