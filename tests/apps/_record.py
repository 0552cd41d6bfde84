"""Shared by the test apps: append one line to $OUT/events, and say "ready"."""

import os
import sys


def record(line: str) -> None:
    fd = os.open(os.path.join(os.environ["OUT"], "events"), os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def ready(what: str = "ready") -> None:
    # One write, newline included: processes sharing a stdout pipe (--workers) do
    # not cut into each other's line, as print() under PYTHONUNBUFFERED could.
    sys.stdout.flush()
    os.write(1, (what + "\n").encode())


def wait_until_stopping(timeout: float = 30.0) -> None:
    """Block until graceful's handler has recorded a stop (a handshake with the test,
    which sends the signal); fail loudly if it never comes."""
    import time

    import graceful

    end = time.monotonic() + timeout
    while not graceful.is_shutting_down():
        if time.monotonic() > end:
            raise RuntimeError(f"no stop recorded within {timeout} s")
        time.sleep(0.005)
