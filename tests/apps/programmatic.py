"""graceful.run() from a script: prints the SIGTERM/SIGINT handlers before and after."""

import asyncio
import signal
import sys

from _record import ready, record

import graceful


def mine(signum: int, frame: object) -> None:
    pass


@graceful.on_shutdown
def saved() -> None:
    record("hook saved")


async def main() -> None:
    ready()
    await asyncio.Event().wait()


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, mine)
    before = (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT))
    code = graceful.run(main, grace=2, loop=sys.argv[1])  # type: ignore[arg-type]
    after = (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT))
    record(f"handlers restored {before == after}")
    record(f"run returned {code}")
    sys.exit(code)
