"""A hook that takes its time, so that a second SIGINT arrives during the shutdown."""

import asyncio
import sys

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


async def with_a_stubborn_child() -> None:
    """The same, with a child that ignores SIGTERM: the forced exit must SIGKILL it."""
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(1000)"
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE
    )
    assert child.stdout is not None
    await child.stdout.readline()  # its disposition is set
    record(f"child {child.pid}")
    ready()
    await asyncio.Event().wait()
