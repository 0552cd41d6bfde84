"""The package's layout rules: what the init may import before it forks the app."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import graceful

HEAVY = {"typing", "dataclasses", "asyncio", "inspect"}
# What a start with the init loads before its fork: the entry modules, the init and
# the process-tree walk, and the deadline's constants.
BEFORE_THE_FORK = {
    "graceful",
    "graceful._cli",
    "graceful._config",
    "graceful._errors",
    "graceful._speak",
    "graceful._validate",
    "graceful._core",
    "graceful._core.deadline",
    "graceful._pid1",
    "graceful._pid1.children",
    "graceful._pid1.init",
}


def test_the_init_loads_neither_typing_nor_asyncio_nor_the_rest_of_graceful() -> None:
    # -- true: the app process execs at once, so -X importtime reports the init's
    # imports alone (each on stderr, one line per module).
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "graceful", "--init", "on", "--", "true"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    names = {
        line.rsplit("|", 1)[1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "graceful._pid1.init" in names  # the init did run in this process
    assert not names & HEAVY
    assert {n for n in names if n.startswith("graceful")} <= BEFORE_THE_FORK


def test_every_module_lives_in_a_package_the_map_names() -> None:
    root = pathlib.Path(graceful.__file__).parent
    packages = {p.name for p in root.iterdir() if (p / "__init__.py").exists()}
    assert packages == {"_core", "_health", "_pid1", "_supervise", "integrations"}
    assert graceful.__doc__ is not None
    for package in packages:
        assert f"{package}/" in graceful.__doc__, package
