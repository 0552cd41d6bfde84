"""Zero failed requests in a rolling update, behind a real haproxy under load.

A short run of ``benchmarks/rolling.py`` (two rolling restarts of three replicas):
with graceful's readiness and drain delay no request fails, and the same rolling
restart of uvicorn run its own way does fail some, which proves that the
measurement can see failures at all. haproxy is installed with apt-get when
missing (root); without it the test fails and says so.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "rolling.py"


def test_a_rolling_update_with_graceful_drops_no_request() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH), "--replicas", "3", "--rounds", "2", "--check"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=BENCH.parent,
    )
    print(result.stdout)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    assert "check passed" in result.stdout
