"""Hooks that raise, hang and block; the one registered first must still run last."""

import asyncio
import time

from _record import ready, record

import graceful


@graceful.on_shutdown
def runs_last() -> None:
    record("hook runs_last")


@graceful.on_shutdown(timeout=0.3)
def blocks_in_sleep() -> None:
    record("hook blocks_in_sleep started")
    time.sleep(1000)


@graceful.on_shutdown(timeout=0.3)
async def swallows_cancellation() -> None:
    record("hook swallows_cancellation started")
    told = False
    while True:
        try:
            await asyncio.sleep(1000)
        except asyncio.CancelledError:
            if not told:  # graceful cancelled it at its bound; it swallows that
                record("hook swallows_cancellation was cancelled")
                told = True


@graceful.on_shutdown
def raises() -> None:
    raise ValueError("hook failed on purpose")


async def main() -> None:
    ready()
    await asyncio.Event().wait()
