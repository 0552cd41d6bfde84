"""A tiny TCP service for ``--workers``: every worker listens on $PORT with SO_REUSEPORT
and answers each connection with its pid."""

import asyncio
import os

from _record import record

import graceful


async def main() -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(f"{os.getpid()}\n".encode())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(
        answer, "127.0.0.1", int(os.environ["PORT"]), reuse_port=True
    )
    record(f"up {os.getpid()} {os.environ['GRACEFUL_WORKER_ID']}")
    # One write: the workers share the parent's stdout, and print() under
    # PYTHONUNBUFFERED writes the newline separately (another worker's line can
    # come in between).
    os.write(1, f"listening {os.getpid()}\n".encode())
    async with server:
        await graceful.wait_for_shutdown()
        record(f"down {os.getpid()}")


async def crashes() -> None:
    """A worker that dies at once: it is restarted until it fails, which stops the app."""
    record(f"crash {os.getpid()}")
    raise SystemExit(3)


async def finishes() -> None:
    """A worker whose main returns at once (exit 0): the app stops, exit code 0."""
    record(f"finished {os.getpid()}")


async def slow() -> None:
    """A worker that is ready only once $OUT/go exists (--readiness manual): until then
    it says "waiting" and serves nothing."""
    go = os.path.join(os.environ["OUT"], "go")

    def wait_for_go() -> None:
        import time

        while not os.path.exists(go):  # the test's handshake, checked every 10 ms
            time.sleep(0.01)

    os.write(1, f"waiting {os.getpid()}\n".encode())
    await asyncio.wait_for(asyncio.to_thread(wait_for_go), 60)
    graceful.set_ready()
    os.write(1, f"listening {os.getpid()}\n".encode())
    await graceful.wait_for_shutdown()
