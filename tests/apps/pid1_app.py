"""Apps for the init tests: signals, orphans, exit-code integrity, leftovers."""

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from _record import ready, record

import graceful

MAKER = str(Path(__file__).with_name("orphan_maker.py"))


@graceful.on_shutdown
def saved() -> None:
    record("hook saved")


async def main() -> None:
    """Reports the signals it gets; stops on SIGTERM/SIGINT through graceful."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGHUP):
        loop.add_signal_handler(sig, print, f"got {sig.name}", None, None)
    record(f"app pid {os.getpid()}")
    ready()
    await asyncio.Event().wait()


async def orphans() -> None:
    """N orphans held on a pipe; SIGUSR1 releases them all at once."""
    count = int(os.environ.get("ORPHANS", "2000"))
    r, w = os.pipe()
    maker = await asyncio.create_subprocess_exec(
        sys.executable, MAKER, "hold", str(count), str(r), pass_fds=(r,), stdout=subprocess.PIPE
    )
    assert maker.stdout is not None
    pids = (await maker.stdout.readline()).decode().split()
    assert await maker.wait() == 0
    os.close(r)
    record("orphans " + " ".join(pids))
    released = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, released.set)
    ready(f"ready {len(pids)}")
    await released.wait()
    os.close(w)
    print("released", flush=True)
    await asyncio.Event().wait()


async def exit_codes() -> None:
    """subprocess.run and asyncio children, while orphans are made and reaped around them."""
    churn = await asyncio.create_subprocess_exec(
        sys.executable, MAKER, "churn", stdout=subprocess.PIPE
    )
    assert churn.stdout is not None
    assert await churn.stdout.readline() == b"churning\n"
    runs = int(os.environ.get("RUNS", "200"))

    def run_sync() -> list[int]:
        return [subprocess.run(["sh", "-c", "exit 7"]).returncode for _ in range(runs)]

    sync_codes = await asyncio.to_thread(run_sync)
    async_codes = []
    for _ in range(runs):
        proc = await asyncio.create_subprocess_exec("sh", "-c", "exit 9")
        async_codes.append(await asyncio.wait_for(proc.wait(), 10))
    churn.kill()
    await churn.wait()
    record(f"sync {sync_codes.count(7)}/{runs} {sorted(set(sync_codes))}")
    record(f"async {async_codes.count(9)}/{runs} {sorted(set(async_codes))}")


async def leaves_one_behind() -> None:
    """Leaves a process that traps SIGTERM outside its own tree, then returns."""
    r, w = os.pipe()
    os.set_inheritable(w, True)  # the leftover writes "up" on it after exec
    code = (
        "import os, signal, sys, time\n"
        "def term(*a):\n"
        "    fd = os.open(os.path.join(os.environ['OUT'], 'events'), os.O_WRONLY | os.O_APPEND)\n"
        "    os.write(fd, b'leftover got SIGTERM\\n')\n"
        "signal.signal(signal.SIGTERM, term)\n"
        f"os.write({w}, b'up')\n"
        "while True:\n"
        "    time.sleep(1000)\n"
    )
    if os.fork() == 0:  # double fork: the leftover is re-parented to the init at once
        os.close(r)
        if os.fork() == 0:
            os.execv(sys.executable, [sys.executable, "-c", code])
        os._exit(0)
    os.close(w)
    assert os.read(r, 2) == b"up"
    record("leftover started")
