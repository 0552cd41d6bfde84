"""A tiny HTTP service that runs as N workers on one port.

    python -m graceful --workers 4 examples.workers:main        # PORT=8000 by default
    curl -s localhost:8000      # "hello from worker 2 (pid 4242)"

Each worker is a whole graceful app (its own loop, hooks and deadline). Two ways
to share the port:

* ``--workers N``: every worker binds the port itself with ``SO_REUSEPORT`` and
  the kernel spreads new connections over them;
* ``examples/service.py``: the parent opens the socket once and passes it to its
  workers (``pass_fds``), which find its number in ``LISTEN_FD``.

On SIGTERM a worker stops accepting, lets the requests in flight finish (they are
short here), runs its hooks and exits 0.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys

import graceful

WORKER = os.environ.get("GRACEFUL_WORKER_ID", "-")


async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        pass
    body = f"hello from worker {WORKER} (pid {os.getpid()})\n".encode()
    writer.write(
        b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    await writer.drain()
    writer.close()


def listening_socket() -> socket.socket:
    passed = os.environ.get("LISTEN_FD")
    if passed:  # opened by the parent and passed down
        return socket.socket(fileno=int(passed))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)  # one socket per worker
    sock.bind((os.environ.get("HOST", "127.0.0.1"), int(os.environ.get("PORT", "8000"))))
    sock.listen(128)
    return sock


def say(line: str) -> None:
    """Print ``line`` in one write. The workers share one stdout; under
    ``PYTHONUNBUFFERED=1`` (common in images) ``print()`` writes the text and the newline
    separately, and two workers' lines can merge into one."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


@graceful.on_shutdown
def goodbye(ctx: graceful.ShutdownContext) -> None:
    say(f"worker {WORKER} (pid {os.getpid()}) stopped after {ctx.reason}")


async def main() -> None:
    server = await asyncio.start_server(answer, sock=listening_socket())
    say(f"worker {WORKER} (pid {os.getpid()}) serving")
    async with server:
        await graceful.wait_for_shutdown()  # phase 1: stop accepting, then unwind
