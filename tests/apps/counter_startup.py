"""examples/counter.py, stopped at a chosen point of its start-up (STOP_AT):

- ``import``: in the middle of the import, after the counter registered its hook;
- ``end``: as the last statement of the import, before graceful calls main;
- ``main``: at main's first statement, before the counter has loaded its state.

The stop is a real SIGTERM: to ourselves, or to PID 1 (graceful's init, which
forwards it) when PID1=1; then we wait until graceful has recorded it.
"""

import asyncio
import os
import signal

from _record import wait_until_stopping

STOP_AT = os.environ["STOP_AT"]


def stop_now() -> None:
    os.kill(1 if os.environ.get("PID1") == "1" else os.getpid(), signal.SIGTERM)
    wait_until_stopping()
    print(f"stopped at {STOP_AT}", flush=True)


from examples import counter  # noqa: E402  (registers the counter's hook)

if STOP_AT == "import":
    stop_now()
    import json  # noqa: F401  (the import goes on after the signal)

if STOP_AT == "end":
    stop_now()


async def main() -> None:
    if STOP_AT == "main":
        stop_now()
        await asyncio.Event().wait()  # cancelled here by the stop: the state is never loaded
    await counter.main()
