"""The receiving end of the notify protocol, for programs started with ``ready="notify"``.

The protocol is systemd's (``sd_notify``): the program finds a datagram socket's
address in ``NOTIFY_SOCKET`` and sends newline-separated ``KEY=VALUE`` fields;
``READY=1`` says it is up, ``STATUS=...`` says what it is doing, ``STOPPING=1`` that
it stops. Servers that speak it (and ``systemd-notify --ready`` in a shell script)
work unchanged, and a graceful app sends it by itself (``_core.notify``).

One socket per supervisor, in the abstract namespace (no file to clean up; an
``@`` in front of the name says so, as systemd writes it). Who sent a datagram is
known from its credentials (``SO_PASSCRED``: the kernel writes the sender's pid,
which the sender cannot forge), and a sender belongs to a program if it is the
program's process or in its process group (a shell wrapper's child may send it).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import struct
from collections.abc import Callable

_numbers = itertools.count()
CREDENTIALS = struct.Struct("3i")
"""``struct ucred``: pid, uid, gid (SCM_CREDENTIALS here, SO_PEERCRED in ``control``)."""


class NotifySocket:
    """A bound datagram socket that hands each message to ``on_message(pid, fields)``."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        on_message: Callable[[int, dict[str, str]], None],
    ) -> None:
        name = f"graceful-notify-{os.getpid()}-{next(_numbers)}-{os.urandom(4).hex()}"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
            sock.bind("\0" + name)
        except BaseException:
            sock.close()
            raise
        self.address = "@" + name
        self._sock = sock
        self._loop = loop
        self._on_message = on_message
        loop.add_reader(sock.fileno(), self._readable)

    def _readable(self) -> None:
        for _ in range(64):  # then let the loop turn: a flood must not hold it
            try:
                data, ancillary, _flags, _address = self._sock.recvmsg(
                    4096, socket.CMSG_SPACE(CREDENTIALS.size)
                )
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            pid = 0
            for level, kind, payload in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = CREDENTIALS.unpack(payload[: CREDENTIALS.size])[0]
            fields = {}
            for line in data.decode("utf-8", "replace").splitlines():
                key, equals, value = line.partition("=")
                if equals:
                    fields[key.strip()] = value
            if pid and fields:
                self._on_message(pid, fields)

    def close(self) -> None:
        if self._sock.fileno() >= 0:
            if not self._loop.is_closed():
                self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
