"""Closing listeners without resets: the SYN filter, and the kernel's queue taken over."""

from __future__ import annotations

import asyncio
import socket

import pytest

from graceful.integrations._listeners import _drop_new_syns, close_listeners


def test_the_filter_drops_new_handshakes_but_not_the_ones_done() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        early = socket.create_connection(("127.0.0.1", port), timeout=5)  # in the queue
        assert _drop_new_syns(listener)
        with pytest.raises(socket.timeout):  # the SYN is dropped: no answer, not a reset
            socket.create_connection(("127.0.0.1", port), timeout=0.3)
        conn, _ = listener.accept()  # the one done before is still there, whole
        early.sendall(b"ping")
        assert conn.recv(4) == b"ping"
        conn.close()
        early.close()


async def test_connections_in_the_queue_are_handed_to_the_server() -> None:
    received: list[bytes] = []

    class Echo(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            received.append(data)
            assert isinstance(self.transport, asyncio.Transport)
            self.transport.write(data)
            self.transport.close()

    loop = asyncio.get_running_loop()
    server = await loop.create_server(Echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    # The loop does not run while these connect (this code holds it): the kernel
    # completes the handshakes and queues them, nobody accepts them yet.
    clients = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(5)]
    for i, client in enumerate(clients):
        client.sendall(f"hello {i}".encode())
    taken = await close_listeners(server, Echo)
    assert len(taken) == 5
    await asyncio.wait(taken, timeout=10)
    for i, client in enumerate(clients):
        client.settimeout(5)
        assert client.recv(100) == f"hello {i}".encode()  # answered, not reset
        client.close()
    with pytest.raises(ConnectionRefusedError):  # and the listener is closed
        socket.create_connection(("127.0.0.1", port), timeout=5)
