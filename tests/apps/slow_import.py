"""Holds its own import until graceful has recorded a stop signal (or forever with HANG=1).

The test sends the signal after "importing"; waiting here until graceful's handler
has run orders the events with a handshake, so on a busy machine the import can
never finish before the signal lands.
"""

import os

from _record import ready, record, wait_until_stopping

import graceful


@graceful.on_shutdown
def saved() -> None:
    record("hook saved")


@graceful.on_shutdown(always=True)
def cleanup() -> None:
    record("hook cleanup (always)")


ready("importing")
if os.environ.get("HANG") == "1":
    import threading

    threading.Event().wait()
wait_until_stopping()
record("import finished")


async def main() -> None:
    record("main started")
