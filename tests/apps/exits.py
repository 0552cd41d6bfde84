"""Apps for what happens after the sequence, and to graceful's own log."""

import asyncio
import atexit
import gc
import logging.config
import os
import sys
import threading
from typing import Any

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


class _InACycle:
    """Refers to itself, so only the collector frees it; holds a file it never closes
    and says when it is finalized (with what it bound, as module globals may be gone)."""

    def __init__(self) -> None:
        self.me = self
        self.file = open(os.path.join(os.environ["OUT"], "in_a_cycle"), "w")

    def __del__(self, write: Any = os.write) -> None:
        write(2, b"object in a cycle finalized\n")


_cycles: list[_InACycle] = []  # a module global holds it, as an app's state would


async def unflushed_file() -> None:
    """Writes into a module-level file it never flushes or closes, and into one that
    only an object in a reference cycle holds: the interpreter's normal exit flushes
    both and finalizes the object, as under plain python."""
    _unflushed.write("written before the stop\n")
    record(f"collector on: {gc.isenabled()}")  # graceful turns it off for its own start
    _cycles.append(_InACycle())
    _cycles[0].file.write("held in a cycle\n")
    ready()
    await asyncio.Event().wait()


async def returns_300() -> int:
    """An exit code the kernel cannot keep whole."""
    return 300
