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
