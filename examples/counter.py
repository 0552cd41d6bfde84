"""A small stateful service: a job counter that survives restarts.

Run it with ``python -m graceful examples.counter:main`` and stop it with Ctrl-C or
SIGTERM; ``kill -USR1`` makes it log its count. The state is restored at start and
saved by an ``@on_shutdown`` hook with an atomic write (temporary file, fsync,
rename), so a SIGKILL at any moment leaves either the old file or the new one, never
a torn one. Temporary files left by a write that a SIGKILL cut short are removed at
the next start.

A stop can come at any moment, also before the state is loaded: graceful skips the
hooks of an app whose ``main`` never started, and the hook below saves nothing
until ``main`` has loaded the state, so a counter stopped during its start-up keeps
the count it had.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import tempfile
from pathlib import Path

import graceful

STATE = Path(os.environ.get("COUNTER_STATE", Path(__file__).parent / "state" / "counter.json"))
TICK = float(os.environ.get("COUNTER_TICK", "0.5"))

jobs_done = 0
loaded = False  # True once the saved count was read: only then may it be overwritten


def load_state() -> int:
    try:
        return int(json.loads(STATE.read_text())["jobs_done"])
    except FileNotFoundError:
        return 0


def remove_stale_temporaries(path: Path) -> int:
    """Delete the temporary files of writes that never finished (cut by a SIGKILL)."""
    removed = 0
    for stale in path.parent.glob(f".{path.name}.*"):
        stale.unlink(missing_ok=True)
        removed += 1
    return removed


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new file, whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # make the rename itself durable
    finally:
        os.close(dir_fd)


@graceful.on_shutdown(timeout=2.0)
def save_state(ctx: graceful.ShutdownContext) -> None:
    if not loaded:
        print(f"state not loaded yet; {STATE} left as it was ({ctx.reason})", flush=True)
        return
    write_atomically(STATE, json.dumps({"jobs_done": jobs_done}).encode())
    print(f"saved jobs_done={jobs_done} to {STATE} ({ctx.reason})", flush=True)


def report() -> None:
    print(f"SIGUSR1: jobs_done={jobs_done}", flush=True)


async def main() -> None:
    global jobs_done, loaded
    if STATE.parent.is_dir():
        removed = remove_stale_temporaries(STATE)
        if removed:
            print(f"removed {removed} unfinished temporary file(s) next to {STATE}", flush=True)
    jobs_done = load_state()
    loaded = True
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, report)
    print(f"counter started at jobs_done={jobs_done}; Ctrl-C or SIGTERM to stop", flush=True)
    while True:
        await asyncio.sleep(TICK)  # one "job"
        jobs_done += 1
        print(f"jobs_done={jobs_done}", flush=True)
