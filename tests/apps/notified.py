"""An app under a service manager (NOTIFY_SOCKET): ready when the test says so, then
its loop blocked until the test says so."""

import asyncio
import sys

from _record import ready

import graceful


async def main() -> None:
    await asyncio.to_thread(sys.stdin.readline)  # "ready"
    graceful.set_ready()
    await asyncio.to_thread(sys.stdin.readline)  # "block"
    ready("blocking")
    sys.stdin.readline()  # the loop itself waits: no watchdog ping until "unblock"
    ready("unblocked")
    await graceful.wait_for_shutdown()
