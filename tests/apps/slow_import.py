"""Blocks its own import until a line arrives on stdin (or forever with HANG=1)."""

import os
import sys

from _record import ready, record

import graceful


@graceful.on_shutdown
def saved() -> None:
    record("hook saved")


ready("importing")
if os.environ.get("HANG") == "1":
    import threading

    threading.Event().wait()
sys.stdin.readline()
record("import finished")


async def main() -> None:
    record("main started")
