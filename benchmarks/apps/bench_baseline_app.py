"""The hand-written baseline: ``python bench_baseline_app.py {asyncio,uvloop}``.

``asyncio.run`` (or ``uvloop.run``) and a ``loop.add_signal_handler`` for
SIGTERM/SIGINT that sets an Event; main returns when it is set. The handlers are
installed before "ready" is written, as every runner measured has its handlers in
place before the app says it is running (otherwise a SIGTERM sent on "ready"
could hit the default action and "exit" without any shutdown at all).
"""

from __future__ import annotations

import asyncio
import signal
import sys

from bench_app import save_state, say_ready


async def main() -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    say_ready()
    await stop.wait()
    save_state()


if __name__ == "__main__":
    if sys.argv[1:] == ["uvloop"]:
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())
