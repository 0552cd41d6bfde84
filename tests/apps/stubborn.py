"""Apps that try to overrun the deadline; each still records its hook if it gets the chance."""

import asyncio
import threading
import time

from _record import ready, record

import graceful


@graceful.on_shutdown
def saved() -> None:
    record("hook saved")


async def task_refuses() -> None:
    async def refuse() -> None:
        while True:
            try:
                await asyncio.sleep(1000)
            except asyncio.CancelledError:
                record("task refused cancellation")

    asyncio.create_task(refuse(), name="refuser")
    ready()
    await asyncio.Event().wait()


async def blocks_loop() -> None:
    ready()
    time.sleep(1000)  # noqa: ASYNC251  (blocking the loop on purpose)


async def busy_executor() -> None:
    loop = asyncio.get_running_loop()
    loop.run_in_executor(None, time.sleep, 1000)
    ready()
    await asyncio.Event().wait()


async def busy_thread() -> None:
    threading.Thread(target=time.sleep, args=(1000,), name="sleeper").start()
    ready()
    await asyncio.Event().wait()


@graceful.on_shutdown
async def hangs_without_timeout() -> None:
    import os

    if os.environ.get("HOOK_HANGS") == "1":
        record("hook hangs_without_timeout started")
        await asyncio.Event().wait()


async def idle() -> None:
    ready()
    await asyncio.Event().wait()
