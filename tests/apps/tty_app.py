"""Run with a terminal on stdin: the shutdown hook waits for a line typed on it."""

import asyncio
import sys

import graceful


@graceful.on_shutdown
def wait_for_a_line() -> None:
    print("hook started", flush=True)
    sys.stdin.readline()


async def main() -> None:
    print("ready", flush=True)
    await asyncio.Event().wait()
