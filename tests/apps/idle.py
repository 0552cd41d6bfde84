"""A well-behaved service and the variants of how main can end."""

import asyncio
import json
import sys

from _record import ready, record

import graceful


@graceful.on_shutdown
def registered_first() -> None:
    record("hook registered_first")


@graceful.on_shutdown(timeout=5)
async def registered_second(ctx: graceful.ShutdownContext) -> None:
    sig = None if ctx.signal is None else ctx.signal.name
    left = ctx.time_left()
    record(
        f"hook registered_second {json.dumps([ctx.reason, sig, ctx.exit_code, left, ctx.deadline])}"
    )


async def main() -> None:
    async def waiter() -> None:
        await graceful.wait_for_shutdown()
        record(f"waiter woke, shutting down={graceful.is_shutting_down()}")

    asyncio.create_task(waiter())
    record(f"main started, shutting down={graceful.is_shutting_down()}")
    try:
        ready()
        await asyncio.Event().wait()
    finally:
        record("main unwound")


async def returns_none() -> None:
    record("main started")


async def returns_seven() -> int:
    return 7


async def raises() -> None:
    raise RuntimeError("boom from main")


async def requests() -> None:
    graceful.request_shutdown(exit_code=3, reason="job finished")
    await asyncio.Event().wait()


async def calls_exit() -> None:
    sys.exit(4)


async def shows_argv() -> None:
    record(json.dumps(sys.argv))


def not_async() -> int:
    return 5


not_callable = 42


async def supervisor_loaded() -> None:
    """A run without supervised processes: the supervisor is not imported, neither at
    start nor by the shutdown sequence (the hook runs after phase 2)."""

    @graceful.on_shutdown
    def check() -> None:
        record(f"supervisor imported {'graceful._supervise.supervisor' in sys.modules}")


async def with_a_thread() -> None:
    """An idle app with a thread of its own, which takes signals as the main one does."""
    import threading
    import time

    started = threading.Event()

    def sleeper() -> None:
        started.set()
        time.sleep(3600)  # a plain sleep: it does not run the main thread's handlers

    threading.Thread(target=sleeper, daemon=True).start()
    started.wait()
    ids = [t.native_id for t in threading.enumerate() if t is not threading.main_thread()]
    ready(f"ready {' '.join(str(i) for i in ids)}")
    await asyncio.Event().wait()
