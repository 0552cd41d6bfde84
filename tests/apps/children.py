"""Starts child processes: one that dies on SIGTERM, one that ignores it, one with a grandchild.

Each child says "up" once its signal disposition is set, so the test's SIGTERM
cannot arrive before. main awaits the children in its finally block, so the
exit statuses it records prove that graceful reaped none of them.
"""

import asyncio
import os
import sys

from _record import ready, record

CHILD = """
import os, signal, sys, time
mode = sys.argv[1]
if mode == "ignores":
    signal.signal(signal.SIGTERM, lambda *a: None)
if mode == "parent":
    pid = os.fork()
    if pid == 0:
        os.execvp(sys.executable, [sys.executable, "-c", "import time; time.sleep(1000)"])
    print("grandchild", pid, flush=True)
print("up", flush=True)
while True:
    time.sleep(1000)
"""


async def main() -> None:
    modes = os.environ.get("CHILD_MODES", "dies,ignores,parent").split(",")
    procs = []
    for mode in modes:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", CHILD, mode, stdout=asyncio.subprocess.PIPE
        )
        assert proc.stdout is not None
        line = await proc.stdout.readline()
        if line.startswith(b"grandchild"):
            record(f"pid grandchild {int(line.split()[1])}")
            line = await proc.stdout.readline()
        assert line == b"up\n", line
        record(f"pid {mode} {proc.pid}")
        procs.append((mode, proc))
    ready()
    try:
        await asyncio.Event().wait()
    finally:
        for mode, proc in procs:
            code = await asyncio.shield(proc.wait())
            record(f"returncode {mode} {code}")


async def awaits_stubborn_child() -> None:
    """main awaits an asyncio child that ignores SIGTERM: it is SIGKILLed at the deadline."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, "ignores", stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    await proc.stdout.readline()
    ready()
    await proc.wait()
