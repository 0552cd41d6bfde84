"""Apps for the cooperative drain, protect(), task errors and exits raised in tasks.

``WORK`` is how long the work started at the stop takes (seconds).
"""

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator

from _record import ready, record

import graceful

WORK = float(os.environ.get("WORK", "0.5"))


@graceful.on_shutdown
def saved(ctx: graceful.ShutdownContext) -> None:
    record(f"hook saved ({ctx.reason}, main started {ctx.main_started})")


async def listening_main() -> None:
    """main itself waits for the stop, then finishes its work: it gets the drain budget."""
    ready()
    ctx = await graceful.wait_for_shutdown()
    record(f"main told to stop, drain left > 0: {ctx.drain_time_left() > 0}")
    await asyncio.sleep(WORK)
    record("main finished its work")


async def deaf_main() -> None:
    """main never waits for the stop: it is cancelled at once and unwinds."""
    ready()
    try:
        await asyncio.Event().wait()
    finally:
        record("main unwound")


async def protected_work() -> None:
    """main awaits work under protect(); main does not listen, so the stop cancels it at
    once, but the protected work goes on until the drain budget ends."""

    async def save() -> None:
        record("protected work started")
        print("protected work started", flush=True)
        await asyncio.sleep(WORK)
        record("protected work finished")

    try:
        await graceful.protect(save())
    except asyncio.CancelledError:
        record("awaiting task cancelled")
        raise


async def protects_while_unwinding() -> None:
    """main does not listen; cancelled at the stop, it protects work as it unwinds (as a
    connection handler that writes its batch would): that work is drained too."""

    async def late() -> None:
        record("late work started")
        await asyncio.sleep(WORK)
        record("late work finished")

    ready()
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        graceful.protect(late())
        raise


async def task_group_consumer() -> None:
    """The usual consumer: main runs a TaskGroup with 4 items in flight and never
    listens for the stop, so the items are cancelled with it and never finish."""

    async def item(n: int) -> None:
        record(f"item {n} started")
        await asyncio.sleep(3600)
        record(f"item {n} finished")

    async def announce() -> None:
        await asyncio.sleep(0)  # the items have started
        ready()
        await asyncio.Event().wait()

    if sys.version_info >= (3, 11):
        async with asyncio.TaskGroup() as group:
            for n in range(4):
                group.create_task(item(n))
            await announce()
    else:  # Python 3.10: the items run beside main, and are cancelled after it
        items = [asyncio.ensure_future(item(n)) for n in range(4)]
        await announce()
        del items


_kept: list[asyncio.Task[None]] = []


async def spawns_while_unwinding() -> None:
    """A background task starts another task as it is cancelled: the sequence sweeps
    again, and cancels that one too."""

    async def late() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            record("late task cancelled")
            raise

    async def background() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            _kept.append(asyncio.get_running_loop().create_task(late()))
            raise

    _kept.append(asyncio.create_task(background()))
    ready()
    await graceful.wait_for_shutdown()


async def stream_consumer_cancelled() -> None:
    """A stream under until_shutdown() whose consumer is cancelled (a client gone): the
    source is closed, and the consumer gets its CancelledError, nothing else."""

    async def ticks() -> AsyncIterator[int]:
        try:
            while True:
                await asyncio.sleep(3600)
                yield 0
        finally:
            record("source closed")

    async def consume() -> None:
        async for _ in graceful.until_shutdown(ticks()):
            pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0)  # it waits for the first item
    await asyncio.sleep(0)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        record("consumer cancelled")


async def drain_delay() -> None:
    """Records every tick while it runs, so the test sees main serving through the delay."""
    ready()
    while True:
        await asyncio.sleep(0.05)
        record(f"tick shutting_down={graceful.is_shutting_down()}")


async def background_crash() -> None:
    """A background task kept in a variable dies; nothing awaits it."""

    async def poller() -> None:
        await asyncio.sleep(0)
        raise ValueError("poller broke")

    task = asyncio.create_task(poller(), name="poller")
    ready()
    await asyncio.Event().wait()
    del task


async def awaited_crash() -> None:
    """A task whose exception is taken by asyncio.wait + result(): not a silent death."""

    async def worker() -> None:
        raise ValueError("handled by main")

    task = asyncio.create_task(worker(), name="worker")
    await asyncio.wait({task})
    try:
        task.result()
    except ValueError:
        record("main took the error")
    ready()
    await asyncio.Event().wait()


async def exit_in_task() -> None:
    """sys.exit(3) in a task (what uvicorn does when its port is taken)."""

    async def server() -> None:
        await asyncio.sleep(0)
        sys.exit(3)

    task = asyncio.create_task(server())
    ready()
    try:
        await task
    finally:
        record("main unwound")


async def interrupt_in_task() -> None:
    async def server() -> None:
        await asyncio.sleep(0)
        raise KeyboardInterrupt

    asyncio.create_task(server())
    ready()
    await asyncio.Event().wait()


async def returns_text() -> str:
    return "hello from main"


async def exits_with_text() -> None:
    sys.exit("bye from main")


def sync_main() -> int:
    record("sync main ran")
    return 0


class ClassMain:
    pass


async def swallows_cancel() -> None:
    """main that refuses cancellation: reported with the line it waits on."""
    ready()
    while True:
        try:
            await asyncio.sleep(1000)  # the line the report must name
        except asyncio.CancelledError:
            record("main swallowed the cancellation")


async def foreign_handler() -> None:
    """A library replaces the SIGTERM handler and drains when it is called."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def library_handler(signum: int, frame: object) -> None:
        record(f"library handler called with {signal.Signals(signum).name}")
        loop.call_soon_threadsafe(stop.set)

    async def request_on_stdin() -> None:
        await loop.run_in_executor(None, sys.stdin.readline)
        graceful.request_shutdown(reason="asked on stdin")

    if os.environ.get("REQUEST"):
        asyncio.create_task(request_on_stdin())
    signal.signal(signal.SIGTERM, library_handler)
    for _ in range(3000):  # handshake: ready once graceful has taken the handler back
        if signal.getsignal(signal.SIGTERM) is not library_handler:
            break
        await asyncio.sleep(0.01)
    ready()
    await stop.wait()
    await asyncio.sleep(WORK)  # the library's own drain
    record("library drained")
