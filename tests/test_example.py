"""The example service of the README: its state survives a stop and a restart."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

from .conftest import Launcher, stop

ROOT = Path(__file__).parent.parent


def test_counter_saves_on_sigterm_and_resumes(launch: Launcher, tmp_path: Path) -> None:
    state = tmp_path / "counter.json"
    env = {"COUNTER_STATE": str(state), "COUNTER_TICK": "0.01", "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "graceful", "--grace", "3", "examples.counter:main"]
    first = launch.command(argv, env=env)
    first.expect("jobs_done=3")
    assert stop(first) == 0
    first.expect("saved jobs_done=")  # printed by the hook, read after the exit
    saved = json.loads(state.read_text())["jobs_done"]
    assert saved >= 3
    assert first.stdout[-1].startswith(f"saved jobs_done={saved} to {state} (SIGTERM)")
    second = launch.command(argv, env=env)
    second.expect(f"counter started at jobs_done={saved}")
    assert stop(second, signal.SIGINT) == 0
    assert json.loads(state.read_text())["jobs_done"] >= saved
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".counter")] == []
