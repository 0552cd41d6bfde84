"""The notify protocol towards a service manager (systemd's Type=notify, WatchdogSec):
a real datagram socket stands for the manager, as systemd cannot run here."""

from __future__ import annotations

import select
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from graceful._core.sequence import PHASES

from .conftest import Launcher


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    yield sock
    sock.close()


def messages(sock: socket.socket, timeout: float) -> list[str]:
    """What arrives within ``timeout`` seconds (at least one, or none if none came)."""
    found: list[str] = []
    while select.select([sock], [], [], timeout if not found else 0)[0]:
        found.append(sock.recv(4096).decode())
    return found


def until(sock: socket.socket, wanted: str, timeout: float = 20.0) -> list[str]:
    """Every message up to the first one containing ``wanted`` (bounded)."""
    seen: list[str] = []
    while True:
        if not select.select([sock], [], [], timeout)[0]:
            raise AssertionError(f"no {wanted!r} within {timeout} s; got {seen}")
        seen.append(sock.recv(4096).decode())
        if wanted in seen[-1]:
            return seen


def test_ready_watchdog_and_stop_reach_the_manager(
    launch: Launcher, manager: socket.socket, tmp_path: Path
) -> None:
    env = {"NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "100000"}
    app = launch.graceful("--grace", "3", "--readiness", "manual", "notified:main", env=env)
    # Pings from the loop (every 50 ms), and no READY=1 while set_ready() is not called.
    before = until(manager, "WATCHDOG=1") + until(manager, "WATCHDOG=1")
    assert not [m for m in before if "READY=1" in m], before
    app.write("ready\n")
    assert "READY=1\nSTATUS=ready" in until(manager, "READY=1")[-1]
    # A blocked loop stops pinging (so the manager restarts the service); it resumes after.
    app.write("block\n")
    app.expect("blocking")
    messages(manager, 0)  # what was sent before the block
    assert messages(manager, 0.5) == []
    app.write("unblock\n")
    until(manager, "WATCHDOG=1")
    # The stop: STOPPING=1 from the signal handler, then each phase as STATUS=.
    app.send(signal.SIGTERM)
    seen = until(manager, "phase 6/6")
    stopping = next(i for i, m in enumerate(seen) if "STOPPING=1" in m)
    first_phase = next(i for i, m in enumerate(seen) if "STATUS=stopping: phase 1/6" in m)
    assert stopping < first_phase, seen
    assert [m for m in seen if m.startswith("STATUS=stopping: phase")] == [
        f"STATUS=stopping: phase {n}/6 {what}" for n, what in enumerate(PHASES, start=1)
    ]
    assert app.wait() == 0, app.stderr


def test_the_example_unit_matches_the_window() -> None:
    path = Path(__file__).parent.parent / "examples" / "systemd" / "counter.service"
    service: dict[str, list[str]] = {}
    section = ""
    for line in path.read_text().splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif "=" in line and not line.startswith("#") and section == "Service":
            key, value = line.split("=", 1)
            service.setdefault(key, []).append(value)
    env = dict(item.split("=", 1) for item in service["Environment"])
    assert service["Type"] == ["notify"] and service["NotifyAccess"] == ["main"]
    assert env["GRACEFUL_INIT"] == "off"  # the app is the main process systemd hears
    assert float(service["TimeoutStopSec"][0]) > float(env["GRACEFUL_GRACE"])
    assert float(service["WatchdogSec"][0]) >= 1
    assert service["ExecStart"][0].endswith("python -m graceful examples.counter:main")

    docs = (Path(__file__).parent.parent / "docs" / "pid1.md").read_text()
    assert "```ini\n" + path.read_text() + "```" in docs  # the guide shows the file as it is
