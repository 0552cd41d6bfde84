"""Apps for the health server tests: readiness states, a held shutdown, a blocked loop,
a timer that tells how often it fired."""

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path

from _record import ready, record

import graceful

OUT = Path(os.environ["OUT"])


@graceful.on_shutdown
async def held() -> None:
    """With HOLD=1, the shutdown waits in this hook until SIGUSR1."""
    if os.environ.get("HOLD") != "1":
        return
    go = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, go.set)
    ready("hook holding")
    await go.wait()
    record("hook released")


async def main() -> None:
    await asyncio.sleep(0)  # readiness (auto) turns on once main reaches an await
    ready()
    await asyncio.Event().wait()


async def toggles() -> None:
    """SIGUSR1: set_ready(); SIGUSR2: set_ready(False); each says so on stdout."""
    loop = asyncio.get_running_loop()

    def set_ready(flag: bool) -> None:
        graceful.set_ready(flag)
        print(f"set_ready({flag})", flush=True)

    loop.add_signal_handler(signal.SIGUSR1, set_ready, True)
    loop.add_signal_handler(signal.SIGUSR2, set_ready, False)
    await asyncio.sleep(0)  # readiness (auto) turns on once main reaches an await
    ready()
    await asyncio.Event().wait()


async def blocks() -> None:
    await asyncio.sleep(0)  # readiness (auto) turns on once main reaches an await
    ready()
    await stuck_in_sleep()


async def stuck_in_sleep() -> None:
    """Blocks the loop thread with time.sleep until $OUT/release exists."""
    release = OUT / "release"
    while not release.exists():
        time.sleep(0.02)  # noqa: ASYNC251  (blocking the loop on purpose)
    record("unblocked")
    ready("unblocked")
    await asyncio.Event().wait()


async def blocks_in_helper() -> None:
    await asyncio.sleep(0)  # readiness (auto) turns on once main reaches an await
    ready()
    wait_for_release()  # a plain function that blocks, called from this coroutine
    ready("unblocked")
    await asyncio.Event().wait()


def wait_for_release() -> None:
    release = OUT / "release"
    while not release.exists():
        time.sleep(0.02)


async def ticker() -> None:
    """A 10 ms timer on the loop; SIGUSR2 prints how many times it fired."""
    loop = asyncio.get_running_loop()
    ticks = 0

    def tick() -> None:
        nonlocal ticks
        ticks += 1
        loop.call_later(0.01, tick)

    loop.call_later(0.01, tick)
    loop.add_signal_handler(signal.SIGUSR2, lambda: print(f"ticks {ticks}", flush=True))
    await asyncio.sleep(0)  # readiness (auto) turns on once main reaches an await
    ready()
    await asyncio.Event().wait()


async def modules() -> None:
    """Records which of the health server's modules are loaded."""
    names = (
        "h11",
        "graceful._health.server",
        "graceful._health.lag",
        "graceful._health.checks",
        "graceful._health.gil",
        "graceful._probe",
    )
    record(json.dumps([name for name in names if name in sys.modules]))


async def serves() -> None:
    """Answers every TCP connection with one line saying whether the shutdown sequence
    has begun; prints its port. SIGUSR1 makes main return."""
    sequence = asyncio.Event()

    async def watch() -> None:
        await graceful.wait_for_shutdown()
        sequence.set()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state = "started" if sequence.is_set() else "not started"
        writer.write(f"served, sequence {state}\n".encode())
        await writer.drain()
        writer.close()

    watcher = asyncio.create_task(watch())
    done = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, done.set)
    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    ready(f"serving {server.sockets[0].getsockname()[1]}")
    async with server:
        await done.wait()
    watcher.cancel()
    record("main returned")


async def measured() -> None:
    """For /metrics: a readiness check that fails while $OUT/down exists, a supervised
    program that crashes at once (restarted), and the loop blocked (time.sleep) on
    stdin's "block" until $OUT/release exists."""

    @graceful.readiness_check(name="db")
    async def db() -> bool:
        return not (OUT / "down").exists()

    graceful.spawn(["sh", "-c", "exit 1"], name="crashy", backoff=(0.05, 0.1), max_restarts=1000)
    await asyncio.sleep(0)
    ready()
    await asyncio.to_thread(sys.stdin.readline)
    ready("blocking")
    release = OUT / "release"
    while not release.exists():  # blocks the loop itself, for the lag figures
        time.sleep(0.01)  # noqa: ASYNC251 (blocking the loop is the point)
    ready("unblocked")
    await graceful.wait_for_shutdown()


async def own_switch_interval() -> None:
    """Sets its own switch interval, then, on a line on stdin, waits (at most 5 s) for it
    to be its own again and records what it is."""
    sys.setswitchinterval(0.01)
    await asyncio.sleep(0)
    ready()
    await asyncio.to_thread(sys.stdin.readline)
    end = time.monotonic() + 5
    while sys.getswitchinterval() != 0.01 and time.monotonic() < end:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    record(f"interval {sys.getswitchinterval()}")
