"""A hook that takes its time, so that a second SIGINT arrives during the shutdown."""

import asyncio

from _record import ready, record

import graceful


@graceful.on_shutdown
async def slow_save() -> None:
    record("hook slow_save started")
    ready("hook started")
    await asyncio.sleep(1000)


async def main() -> None:
    ready()
    await asyncio.Event().wait()
