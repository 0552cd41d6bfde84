"""``python -m graceful ctl``: see and control a running app's supervised processes.

Talks to the app's ``--control-socket`` (a Unix socket only the app's user and
root may use; see ``_supervise/control``). Imports only ``socket``: it runs inside
the container (``kubectl exec POD -- python -m graceful ctl status``), often.
"""

from __future__ import annotations

import socket

from ._errors import UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import TextIO

USAGE = """\
usage: python -m graceful ctl [--socket PATH] status
       python -m graceful ctl [--socket PATH] restart|stop|tail NAME

See and control the supervised processes of a running graceful app started with
--control-socket PATH (GRACEFUL_CONTROL_SOCKET). Exit 0 done, 1 refused or the
app cannot be reached (one line says why), 2 bad usage.

  status                every supervised process: state, pid, uptime, restarts
  restart NAME          stop NAME (its stop signal) and start it again at once
  stop NAME             stop NAME for good (no more restarts)
  tail NAME             the last lines NAME wrote (output="log")
  --socket PATH         [GRACEFUL_CONTROL_SOCKET]
"""

TIMEOUT = 30.0
"""A stop waits for the process, up to its stop timeout (10 s by default)."""


def ctl(args: Sequence[str], env: Mapping[str, str], out: TextIO, err: TextIO) -> int:
    """Run the command; the exit code. Raises :class:`UsageError` on bad arguments."""
    if "-h" in args or "--help" in args:
        out.write(USAGE)
        return 0
    path, words = _parse(args, env)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(TIMEOUT)
            sock.connect(path)
            sock.sendall((" ".join(words) + "\n").encode())
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        err.write(f"graceful ctl: cannot reach the app at {path}: {reason}\n")
        return 1
    first, _, rest = b"".join(chunks).decode(errors="replace").partition("\n")
    if first != "ok":
        err.write(f"graceful ctl: {first.removeprefix('error: ') or 'no answer'}\n")
        return 1
    out.write(rest)
    return 0


def _parse(args: Sequence[str], env: Mapping[str, str]) -> tuple[str, list[str]]:
    words = list(args)
    path = env.get("GRACEFUL_CONTROL_SOCKET", "")
    if "--socket" in words:
        i = words.index("--socket")
        if i + 1 >= len(words):
            raise UsageError("ctl --socket needs a path, e.g. --socket /tmp/graceful.sock")
        path = words[i + 1]
        del words[i : i + 2]
    if not path:
        raise UsageError(
            "ctl needs the app's control socket: --socket PATH or GRACEFUL_CONTROL_SOCKET"
            " (the app's --control-socket)"
        )
    if words[:1] == ["status"] and len(words) == 1:
        return path, words
    if words[:1] in (["restart"], ["stop"], ["tail"]) and len(words) == 2:
        return path, words
    raise UsageError(
        f"ctl takes status, restart NAME, stop NAME or tail NAME, got {' '.join(words)!r};"
        " see python -m graceful ctl --help"
    )
