"""``python -m graceful probe ready|live``: ask the health server, exit 0 or 1.

For images without curl: a Kubernetes exec probe or Docker's ``HEALTHCHECK`` runs it
every few seconds in every container, so it starts as little as it can. It is
dispatched before the rest of the command line is looked at, and imports only
``_socket`` (the C module: ``socket`` builds its enums at import, ~4 ms with
``enum``), neither asyncio (~50 ms) nor http.client/urllib (~40 ms) nor json: the
answer is one status line and a small body that is shown as it came.
"""

from __future__ import annotations

import _socket
import time

from ._config import source_example
from ._errors import UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import TextIO

USAGE = """\
usage: python -m graceful probe ready|live [--port PORT] [--host HOST] [--timeout SECONDS]

Ask the health server of a graceful app (--health-port) and exit 0 when it answers
200, 1 when it answers otherwise or cannot be reached (one line says why), 2 on bad
usage. For Kubernetes exec probes and Docker HEALTHCHECK in images without curl.

  ready                 GET /readyz: ready for traffic
  live                  GET /livez: the event loop is responsive
  --port PORT           [GRACEFUL_HEALTH_PORT]
  --host HOST           [GRACEFUL_HEALTH_HOST unless it is 0.0.0.0 or ::, else 127.0.0.1]
  --timeout SECONDS     for the whole exchange [default 2]
"""

PATHS = {"ready": "/readyz", "live": "/livez"}
QUERY = {"ready": "?verbose", "live": ""}  # the reasons, for kubectl describe
DEFAULT_TIMEOUT = 2.0
MAX_ANSWER = 65536
SHOWN = 200
"""At most this many characters of a body are shown (a non-graceful server's page)."""
WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


def probe(args: Sequence[str], env: Mapping[str, str], out: TextIO, err: TextIO) -> int:
    """Run the probe; the exit code. Raises :class:`UsageError` on bad arguments."""
    if "-h" in args or "--help" in args:
        out.write(USAGE)
        return 0
    what, host, port, timeout = _parse(args, env)
    path = PATHS[what]
    where = f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"
    try:
        status, reason, body = _get(host, port, path + QUERY[what], timeout)
    except _Unreachable as exc:
        err.write(f"graceful probe: {path} unreachable at {where}: {exc}\n")
        return 1
    line = (
        f"{path} answered {status} {reason}: {body}"
        if body
        else f"{path} answered {status} {reason}"
    )
    if status == 200:
        out.write(f"{line}\n")
        return 0
    err.write(f"graceful probe: {line}\n")
    return 1


class _Unreachable(Exception):
    pass


def _parse(args: Sequence[str], env: Mapping[str, str]) -> tuple[str, str, int, float]:
    values: dict[str, str] = {}
    words: list[str] = []
    i = 0
    while i < len(args):
        word = args[i]
        name, eq, value = word.partition("=")
        if name in ("--port", "--host", "--timeout"):
            if not eq:
                i += 1
                if i == len(args):
                    raise UsageError(f"{name} needs a value; see python -m graceful probe --help")
                value = args[i]
            values[name] = value
        elif word.startswith("-"):
            raise UsageError(f"unknown probe option {name!r}; see python -m graceful probe --help")
        else:
            words.append(word)
        i += 1
    if len(words) != 1 or words[0] not in PATHS:
        got = " ".join(words) or "nothing"
        raise UsageError(
            f"probe takes ready or live, got {got}; e.g. python -m graceful probe ready"
        )
    if "--port" in values:
        source, text = "--port", values["--port"]
    elif env.get("GRACEFUL_HEALTH_PORT", "") != "":
        source, text = "GRACEFUL_HEALTH_PORT", env["GRACEFUL_HEALTH_PORT"]
    else:
        raise UsageError(
            "probe needs the health server's port: pass --port PORT"
            " or set GRACEFUL_HEALTH_PORT as for the app"
        )
    port = int(text.strip()) if text.strip().isdigit() else -1
    if port == 0:
        raise UsageError(
            "probe cannot ask port 0 (any free port); give the app a fixed --health-port"
            " and the probe the same"
        )
    if not 1 <= port <= 65535:
        raise UsageError(
            f"{source} must be a port number from 1 to 65535, got {text!r};"
            f" use e.g. {source_example(source, '8081')}"
        )
    host = values.get("--host") or env.get("GRACEFUL_HEALTH_HOST", "").strip()
    if host.startswith("[") and host.endswith("]"):  # [::1]
        host = host[1:-1]
    host = WILDCARDS.get(host, host)
    timeout = DEFAULT_TIMEOUT
    if "--timeout" in values:
        text = values["--timeout"]
        try:
            timeout = float(text)
        except ValueError:
            timeout = -1.0
        if not 0 < timeout <= 3600:
            raise UsageError(
                f"--timeout must be more than 0 and at most 3600 seconds, got {text!r};"
                f" use e.g. {source_example('--timeout', '2')}"
            )
    return words[0], host, port, timeout


def _get(host: str, port: int, path: str, timeout: float) -> tuple[int, str, str]:
    """GET ``path``: (status, reason, body). Raises _Unreachable with why.

    ``timeout`` bounds the whole exchange (connecting, sending, reading), not each
    call: a server that answers a byte at a time cannot hold the probe longer.
    """
    end = time.monotonic() + timeout
    try:
        # A str host is encoded with the IDNA codec, whose import costs ~2 ms; ASCII
        # bytes are taken as they are (a non-ASCII name still goes through IDNA).
        name: str | bytes = host.encode("ascii") if host.isascii() else host
        infos = _socket.getaddrinfo(name, port, 0, _socket.SOCK_STREAM)
    except OSError as exc:
        raise _Unreachable(f"cannot resolve {host!r} ({exc.strerror or exc})") from None
    problem = "no address"
    for family, kind, proto, _name, address in infos:
        sock = _socket.socket(family, kind, proto)
        try:
            sock.settimeout(_left(end, timeout))
            sock.connect(address)
        except TimeoutError:
            sock.close()
            problem = f"no connection within {timeout:g} s"
            continue
        except OSError as exc:
            sock.close()
            problem = (exc.strerror or str(exc)).lower()
            continue
        try:
            return _exchange(sock, host, port, path, timeout, end)
        finally:
            sock.close()
    raise _Unreachable(problem)


def _left(end: float, timeout: float) -> float:
    left = end - time.monotonic()
    if left <= 0:
        raise TimeoutError
    return left


def _exchange(
    sock: _socket.socket, host: str, port: int, path: str, timeout: float, end: float
) -> tuple[int, str, str]:
    name = f"[{host}]" if ":" in host else host
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {name}:{port}\r\nUser-Agent: graceful-probe\r\n"
        "Connection: close\r\n\r\n"
    )
    answer = b""
    length: int | None = None  # the body's Content-Length, once the head is complete
    complete = False
    try:
        sock.settimeout(_left(end, timeout))
        sock.sendall(request.encode())
        while len(answer) < MAX_ANSWER:
            sock.settimeout(_left(end, timeout))
            chunk = sock.recv(MAX_ANSWER)
            if not chunk:
                complete = b"\r\n\r\n" in answer and length is None
                break
            answer += chunk
            head, sep, body = answer.partition(b"\r\n\r\n")
            if sep and length is None:
                length = _content_length(head)
            if sep and length is not None and len(body) >= length:
                complete = True  # read to its length: no need to wait for the close
                break
    except TimeoutError:
        if not answer:
            raise _Unreachable(f"no answer within {timeout:g} s") from None
    except OSError as exc:
        if not answer:
            raise _Unreachable(f"connection lost ({(exc.strerror or str(exc)).lower()})") from None
    head, sep, body = answer.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    version, _s, rest = status_line.partition(" ")
    code, _s, reason = rest.partition(" ")
    if not version.startswith("HTTP/") or not code.isdigit():
        raise _Unreachable(f"the answer is not HTTP: {_shown(answer[:80].decode('latin-1'))}")
    if not complete:
        raise _Unreachable(
            f"incomplete answer within {timeout:g} s ({_shown(status_line)},"
            f" {len(answer)} bytes): a complete status line, headers and body count"
        )
    if length is not None:
        body = body[:length]
    text = body.decode("utf-8", "replace").strip().replace("\n", " ")
    if len(text) > SHOWN:
        text = text[:SHOWN] + "..."
    return int(code), _shown(reason), _shown(text)


def _content_length(head: bytes) -> int | None:
    for line in head.split(b"\r\n")[1:]:
        field, _sep, value = line.partition(b":")
        if field.strip().lower() == b"content-length" and value.strip().isdigit():
            return int(value.strip())
    return None


def _shown(text: str) -> str:
    """``text`` safe for a terminal or an event log: control characters (escape
    sequences, carriage returns, bells) are shown escaped, never sent as they are."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
