"""An app whose loop takes SIGTERM (loop.add_signal_handler) once it runs: uvloop calls
the signal.signal it bound at import, from compiled code."""

import asyncio
import signal

from _record import ready, record

import graceful
from graceful._core import runtime


@graceful.on_shutdown
def saved() -> None:
    record("hook ran")


async def main() -> None:
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, lambda: record("app handler called"))
    run = runtime.current()
    assert run is not None
    record(f"polling {run.guard._timer is not None}")
    ready()  # the test sends SIGTERM at once: no poll could have taken the signal back
    await graceful.wait_for_shutdown()
