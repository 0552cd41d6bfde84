"""A hook that declares more time than a short --grace holds."""

from _record import ready, record

import graceful


@graceful.on_shutdown(timeout=30)
def flush() -> None:
    record("flushed")


async def main() -> None:
    ready()
    await graceful.wait_for_shutdown()
