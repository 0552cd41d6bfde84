"""--log-format json: every line graceful writes is one JSON object, in every role
(the init as PID 1, a --workers parent and its workers, lines it relays)."""

from __future__ import annotations

import json
from typing import Any

from .conftest import Launcher, free_port, stop
from .test_init import pid1, stop_pid1
from .test_workers import listening


def records(stderr: str) -> list[dict[str, Any]]:
    """Each stderr line as a JSON object (a line that is not one fails the test)."""
    found = []
    for line in stderr.splitlines():
        record = json.loads(line)
        assert isinstance(record, dict), line
        assert {"time", "level", "logger", "message", "pid"} <= record.keys(), line
        assert record["time"].endswith("Z") and record["time"][10] == "T", line
        found.append(record)
    return found


def the_summary(found: list[dict[str, Any]]) -> dict[str, Any]:
    summaries = [
        r for r in found if r["message"].startswith("shutdown after") and "process" not in r
    ]
    assert len(summaries) == 1, summaries
    return summaries[0]


def test_json_lines_everywhere(launch: Launcher) -> None:
    # A supervised plain program and a graceful app (which inherits the setting and
    # writes JSON itself): relayed at their levels, with their fields.
    app = launch.graceful("--grace", "2", "supervised:levels", env={"GRACEFUL_LOG_FORMAT": "json"})
    assert app.wait(timeout=30) == 0, app.stderr
    found = records(app.stderr)
    kid = [r for r in found if r.get("source") == "kid" and "own error" in r["message"]]
    assert len(kid) == 1 and kid[0]["level"] == "ERROR", kid
    assert isinstance(kid[0]["source_pid"], int) and kid[0]["source_pid"] != kid[0]["pid"]
    err = [r for r in found if r.get("source") == "plain" and r["message"].endswith("plain err")]
    assert err[0]["level"] == "WARNING" and err[0]["stream"] == "stderr", err
    summary = the_summary(found)
    assert summary["cause"] == "main returned" and summary["exit_code"] == 0, summary
    assert summary["processes"] == {"plain": "0", "kid": "0"}, summary
    assert summary["hooks_failed"] == [] and isinstance(summary["took_s"], float)

    # --workers: the parent and each worker, each worker naming itself.
    port = free_port()
    workers = launch.graceful(
        "--log-format", "json", "--grace", "3", "--workers", "2", "worker_server:main",
        env={"PORT": str(port)},
    )  # fmt: skip
    listening(workers, 2)
    assert stop(workers) == 0, workers.stderr
    found = records(workers.stderr)
    named = {r["process"] for r in found if "process" in r}
    assert named == {"worker-0", "worker-1"}, named
    assert the_summary(found)["processes"] == {"worker-0": "0", "worker-1": "0"}

    # As PID 1: the init's own lines too (DEBUG shows them), and a bad option's error.
    app = pid1(launch, "--log-format", "json", "--log-level", "DEBUG", "--grace", "2", "idle:main")
    app.expect("ready")
    assert stop_pid1(app) == 0, app.stderr
    found = records(app.stderr)
    assert any(r["message"].startswith("init:") for r in found), found
    assert the_summary(found)["exit_code"] == 0
