"""The counter's schema migrations: run once, to completion, before a new version starts.

    python -m graceful -- python -m examples.migrate

The Kubernetes examples run this as an init container of the counter's pod, with the
app's own image (examples/kubernetes/base/deployment.yaml), so each version migrates
with the code that knows its schema. graceful's init (``--``) is PID 1: a pod deleted
mid-migration passes SIGTERM on and ends the step, instead of waiting out the grace
period.

The schema version lives in ``schema.json`` beside COUNTER_STATE (0 when there is
none). Each step of ``STEPS`` after it runs in order, and the version is recorded
after each one; every write is atomic (temporary file, fsync, rename), and every step
is safe to run twice, so a migration stopped at any moment is finished by the next
run. Run again, it has nothing to do and exits 0. State recorded by a newer version
than this image knows is refused with exit code 3: an older image (a rollback) does
not start on data it cannot read.

A new version that changes the format appends its step; the old version never runs
beside it (the Deployment's ``strategy: Recreate``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

from examples.counter import STATE, remove_stale_temporaries, write_atomically

SCHEMA = STATE.with_name("schema.json")
NEWER = 3  # exit code: the state is newer than this image's steps


def create_state(state: Path) -> None:
    """The state file exists and holds an integer count (an unreadable one stops here,
    before the app starts on it)."""
    if state.exists():
        int(json.loads(state.read_text())["jobs_done"])
        return
    write_atomically(state, json.dumps({"jobs_done": 0}).encode())


# (what the step does, the step); the schema version is the number of steps applied.
STEPS: list[tuple[str, Callable[[Path], None]]] = [
    ("create the state file", create_state),
]


def schema_version() -> int:
    try:
        return int(json.loads(SCHEMA.read_text())["version"])
    except FileNotFoundError:
        return 0


def migrate() -> int:
    """Bring the state directory to the latest schema; the exit code."""
    remove_stale_temporaries(SCHEMA)  # a write cut short by a SIGKILL
    version = schema_version()
    if version > len(STEPS):
        print(
            f"{SCHEMA}: schema version {version} is newer than this image knows"
            f" ({len(STEPS)}); refusing to start an older version on it",
            file=sys.stderr,
            flush=True,
        )
        return NEWER
    if version == len(STEPS):
        print(f"{SCHEMA}: schema version {version}, up to date", flush=True)
        return 0
    for number, (what, step) in enumerate(STEPS[version:], start=version + 1):
        step(STATE)
        write_atomically(SCHEMA, json.dumps({"version": number}).encode())
        print(f"{SCHEMA}: schema version {number}: {what}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(migrate())
