"""Apps measured by ``benchmarks/bench_observe.py``.

``stop_with_lines``: says "ready", then waits; its shutdown hook writes 100 lines
through graceful's logger, so a stop writes the sequence's own lines plus those
(the --log-format text/json comparison).
"""

from __future__ import annotations

import asyncio
import logging
import sys

import graceful

LINES = 100


@graceful.on_shutdown
def log_lines() -> None:
    log = logging.getLogger("graceful")
    for n in range(LINES):
        log.info("line %d of the hook, with a figure %.3f", n, n / 7)


async def stop_with_lines() -> None:
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    await asyncio.Event().wait()
