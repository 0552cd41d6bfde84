"""Apps for what happens after the sequence, and to graceful's own log."""

import asyncio
import atexit
import logging.config
import os
import sys
import threading

from _record import ready, record

import graceful


async def dict_config() -> None:
    """The app's logging set-up disables existing loggers (dictConfig's default)."""
    logging.config.dictConfig(
        {
            "version": 1,
            "handlers": {"err": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr"}},
            "root": {"handlers": ["err"], "level": "INFO"},
        }
    )

    @graceful.on_shutdown
    def fails() -> None:
        raise RuntimeError("hook failed after dictConfig")

    ready()
    await asyncio.Event().wait()


async def blocking_atexit() -> None:
    atexit.register(threading.Event().wait)  # never returns
    ready()
    await asyncio.Event().wait()


async def waits_in_atexit() -> None:
    def exiting() -> None:
        print("in atexit", flush=True)
        sys.stdin.readline()  # the test sends SIGTERM here, then a line
        record("atexit done")

    atexit.register(exiting)
    ready()
    await asyncio.Event().wait()


_unflushed = open(os.path.join(os.environ["OUT"], "unflushed"), "w")  # never closed


async def unflushed_file() -> None:
    """Writes into a module-level file it never flushes or closes: the interpreter's
    normal exit flushes it, as under plain python."""
    _unflushed.write("written before the stop\n")
    ready()
    await asyncio.Event().wait()


async def returns_300() -> int:
    """An exit code the kernel cannot keep whole."""
    return 300
