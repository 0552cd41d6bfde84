"""An app that runs out of file descriptors (a connection leak) before the stop: the
sequence must still run, and its hook must still be able to save."""

import asyncio
import os

from _record import ready, record

import graceful

held: list[int] = []


@graceful.on_shutdown
def save_state() -> None:
    record("hook saved")  # needs a descriptor of its own


async def main() -> None:
    try:
        while True:  # from main's first line: the stop path is not loaded yet
            held.append(os.open(os.devnull, os.O_RDONLY))
    except OSError as exc:
        print(f"out of descriptors: {exc.strerror}", flush=True)
    ready()
    await asyncio.Event().wait()


async def blocks() -> None:
    """Out of descriptors, then the loop blocked: only the watchdog can end it."""
    import time

    try:
        while True:
            held.append(os.open(os.devnull, os.O_RDONLY))
    except OSError as exc:
        print(f"out of descriptors: {exc.strerror}", flush=True)
    ready()
    time.sleep(3600)  # noqa: ASYNC251  (the point: the loop is blocked)
