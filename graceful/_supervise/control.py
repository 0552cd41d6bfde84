"""The app's end of ``python -m graceful ctl``: a Unix socket (``--control-socket``).

One request a connection: a line ``COMMAND [NAME]``; the answer is text, its first
line ``ok`` or ``error: ...``, then the connection closes. Commands: ``status``
(every supervised process), ``restart NAME``, ``stop NAME``, ``tail NAME``.

Who may ask: the socket file is made readable and writable by its owner only,
and every connection's peer is checked with ``SO_PEERCRED`` (the kernel's word
for the peer's uid, which the peer cannot forge): this app's user, or root.
Anyone else gets ``error: ...`` and nothing is done. The socket never listens on
the network, and is not the health server's port.

The server runs on the app's loop; it is bound before the app is imported (a path
that cannot be used is a usage error at start, exit 2) and removed at the end.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import stat

from .._errors import UsageError
from .notify import CREDENTIALS

log = logging.getLogger("graceful")

MAX_REQUEST = 1024


class ControlSocket:
    """The bound socket; ``serve()`` on the app's loop, ``close()`` at the end."""

    def __init__(self, path: str, sock: socket.socket) -> None:
        self.path = path
        self._sock = sock
        self._server: asyncio.AbstractServer | None = None

    @classmethod
    def bind(cls, path: str, source: str) -> ControlSocket:
        """Bind ``path`` (a stale socket file left by a killed app is replaced); raises
        :class:`UsageError` naming ``source`` when the path cannot be used."""
        try:
            if stat.S_ISSOCK(os.lstat(path).st_mode):
                probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    probe.connect(path)
                except OSError:  # nobody listens: left behind
                    os.unlink(path)
                else:
                    raise UsageError(
                        f"{source} {path}: another app answers on it; give each app its own"
                    )
                finally:
                    probe.close()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise UsageError(
                f"{source} {path}: {exc.strerror or exc}; choose another path"
            ) from None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            old = os.umask(0o177)  # born 0600: no moment in which others may connect
            try:
                sock.bind(path)
            finally:
                os.umask(old)
            sock.listen(16)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            raise UsageError(
                f"{source} {path}: cannot listen there ({exc.strerror or exc}); choose a path in a"
                " directory this user can write, e.g. /tmp/graceful.sock"
            ) from None
        return cls(path, sock)

    async def serve(self) -> None:
        self._server = await asyncio.start_unix_server(self._answer, sock=self._sock)

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
        else:
            self._sock.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            # The request is read first, also from a peer that is refused: a client
            # still sending when the connection closed would see EPIPE, not the answer.
            line = await asyncio.wait_for(reader.readline(), 5)
            peer: socket.socket = writer.get_extra_info("socket")
            creds = peer.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, CREDENTIALS.size)
            pid, uid, _gid = CREDENTIALS.unpack(creds)
            if uid not in (0, os.geteuid()):
                log.warning(
                    "control socket: refused uid %d (pid %d): not this app's user", uid, pid
                )
                writer.write(b"error: not allowed: only this app's user or root may control it\n")
                return
            answer = await _do(line[:MAX_REQUEST].decode(errors="replace").split())
            writer.write(answer.encode())
        except (OSError, ValueError, asyncio.TimeoutError):  # (ValueError: a line too long)
            pass
        finally:
            try:
                await writer.drain()
            except OSError:
                pass
            writer.close()


async def _do(words: list[str]) -> str:
    from .program import FINAL, Managed
    from .supervisor import supervised

    processes: dict[str, Managed] = {m.name: m for m in supervised()}
    command, *args = words or [""]
    if command == "status" and not args:
        lines = ["ok"]
        for m in processes.values():
            pid, uptime = m.pid, m.uptime()
            up = f" up {uptime:.1f} s" if uptime is not None else ""
            status = f" ({m.status})" if m.status else ""
            lines.append(
                f"{m.name} {m.state.value} pid {pid if pid is not None else '-'}{up}"
                f" restarts {m.restarts}{status}"
            )
        if not processes:
            lines.append("(no supervised processes)")
        return "\n".join(lines) + "\n"
    if command in ("restart", "stop", "tail") and len(args) == 1:
        managed = processes.get(args[0])
        if managed is None:
            known = ", ".join(processes) or "none"
            return f"error: no process named {args[0]!r} (known: {known})\n"
        if command == "tail":
            return "\n".join(["ok", *managed.last_lines()]) + "\n"
        if command == "stop":
            code = await managed.stop()
            return f"ok\n{managed.name} stopped: {managed.state.value}, exit status {code}\n"
        if managed.state in FINAL:
            return (
                f"error: {managed.name} has {managed.state.value} for good; it is not restarted\n"
            )
        managed.restart_now()
        return f"ok\n{managed.name} restarting\n"
    return (
        f"error: unknown request {' '.join(words)!r}; use status, restart NAME, stop NAME"
        " or tail NAME\n"
    )
