"""Descendant processes: terminated at the first signal, killed at the deadline,
and never reaped by graceful (their exit statuses stay with the app)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys

from graceful._pid1.children import Descendants, descendant_pids

from .conftest import Launcher, gone, poll_until, stop


def wait_gone(pids: list[int], timeout: float = 10.0) -> list[int]:
    """Orphans are reaped by whoever is PID 1 here; give it a bounded moment."""
    poll_until(lambda: all(gone(p) for p in pids), timeout)
    return [p for p in pids if not gone(p)]


def pids_of(events: list[str]) -> dict[str, int]:
    return {e.split()[1]: int(e.split()[2]) for e in events if e.startswith("pid ")}


def test_children_get_sigterm_and_the_app_keeps_their_exit_status(launch: Launcher) -> None:
    app = launch.graceful("--grace", "3", "children:main", env={"CHILD_MODES": "dies,parent"})
    app.expect("ready")
    assert stop(app) == 0
    events = app.events()
    # main's finally awaited proc.wait(): the statuses are the real ones (-SIGTERM)
    assert f"returncode dies {-signal.SIGTERM}" in events
    assert f"returncode parent {-signal.SIGTERM}" in events
    assert "children terminated 3, killed 0" in app.stderr  # the grandchild too
    assert wait_gone(list(pids_of(events).values())) == []
    assert app.elapsed() < 3


def test_child_ignoring_sigterm_is_killed_within_grace(launch: Launcher) -> None:
    app = launch.graceful("--grace", "1.5", "children:main", env={"CHILD_MODES": "dies,ignores"})
    app.expect("ready")
    assert stop(app) == 1
    assert app.elapsed() < 1.5
    killed = re.search(
        r"still running at the deadline; sent SIGKILL (\d\.\d\d) s before it", app.stderr
    )
    assert killed, app.stderr
    # Just before the deadline (KILL_RESERVE, 0.1 s), not at it: a late timer under load
    # makes this smaller, never larger.
    assert 0 < float(killed.group(1)) <= 0.1
    assert "children terminated 2, killed 1" in app.stderr
    assert wait_gone(list(pids_of(app.events()).values())) == []


def _spawn(code: str) -> tuple[subprocess.Popen[bytes], list[bytes]]:
    """A Python child running ``code``; returns it and what it printed, once it said "up"."""
    proc = subprocess.Popen(
        [sys.executable, "-c", code + "\nprint('up', flush=True)\nimport time\ntime.sleep(1000)"],
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    printed = []
    while (line := proc.stdout.readline()) != b"up\n":
        assert line, "child exited before saying up"
        printed.append(line)
    return proc, printed


def test_descendants_are_found_signalled_and_awaited_without_reaping() -> None:
    for use_pidfd in (True, False):
        proc, _ = _spawn("pass")
        stubborn, _ = _spawn("import signal\nsignal.signal(signal.SIGTERM, lambda *a: None)")
        try:
            kids = Descendants(use_pidfd=use_pidfd)
            assert sorted(kids.discover()) == sorted([proc.pid, stubborn.pid])
            assert kids.discover() == []  # already tracked
            assert sorted(kids.send(signal.SIGTERM)) == sorted([proc.pid, stubborn.pid])
            # The stubborn one outlives the bound (it ignores SIGTERM); 2 s is ample for
            # the other to die of the signal, which the kernel does without its code.
            assert asyncio.run(kids.wait_async(2)) == [stubborn.pid]
            assert kids.send(signal.SIGKILL) == [stubborn.pid]
            assert asyncio.run(kids.wait_async(5)) == []
            kids.close()
            # Nothing was reaped: Popen still gets the exact statuses.
            assert proc.wait(5) == -signal.SIGTERM
            assert stubborn.wait(5) == -signal.SIGKILL
        finally:
            for p in (proc, stubborn):
                p.kill()
                p.wait(5)
                assert p.stdout is not None
                p.stdout.close()


def test_descendant_pids_skips_zombies_and_finds_grandchildren() -> None:
    proc, printed = _spawn(
        "import subprocess, sys\n"
        "z = subprocess.Popen(['true'])\n"
        "g = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(1000)'])\n"
        "while open(f'/proc/{z.pid}/stat').read().rsplit(')', 1)[1].split()[0] != 'Z': pass\n"
        "print(g.pid, z.pid, flush=True)"
    )
    try:
        grandchild, zombie = map(int, printed[0].split())
        found = descendant_pids()
        assert proc.pid in found and grandchild in found
        assert zombie not in found
        assert found.index(proc.pid) < found.index(grandchild)
        assert os.getpid() not in found
    finally:
        for pid in descendant_pids(proc.pid):
            os.kill(pid, signal.SIGKILL)
        proc.kill()
        proc.wait(5)
        assert proc.stdout is not None
        proc.stdout.close()
