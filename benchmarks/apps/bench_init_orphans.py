"""Orphan maker for ``bench_init.py``, run as the child of the init under test.

    bench_init_orphans.py COUNT RELEASE_FD

A plain, single-threaded script (so fork is safe). It forks one short-lived
"maker" that forks COUNT grandchildren and then exits, so all of them are
orphaned at once and re-parented to PID 1 of the namespace. Each orphan points
its stdio at /dev/null (else it would hold the harness's stdout pipe open),
writes one byte to a readiness pipe, then blocks reading RELEASE_FD until EOF.
The harness holds the only write end of that pipe: closing it releases every
orphan at the same instant, and each exits 0.

Once all COUNT orphans have reported in, this script prints
``ready COUNT NS_PID`` (its own pid inside the namespace) and waits for a
signal; SIGTERM, forwarded by the init, ends it (default action).
"""

from __future__ import annotations

import os
import signal
import sys


def make_orphans(count: int, release_fd: int, ready_w: int) -> None:
    """In the maker: fork ``count`` orphans-to-be, then exit (which orphans them)."""
    null = os.open(os.devnull, os.O_RDWR)
    for _ in range(count):
        if os.fork() == 0:
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            os.close(null)
            os.write(ready_w, b".")
            os.close(ready_w)
            while os.read(release_fd, 4096):  # until EOF: the harness closed its end
                pass
            os._exit(0)
    os._exit(0)


def main() -> int:
    count, release_fd = int(sys.argv[1]), int(sys.argv[2])
    try:
        os.fstat(release_fd)
    except OSError:
        print(f"error: fd {release_fd} was not passed on by the init", flush=True)
        return 2
    ready_r, ready_w = os.pipe()
    maker = os.fork()
    if maker == 0:
        try:
            os.close(ready_r)
            make_orphans(count, release_fd, ready_w)
        finally:
            os._exit(3)  # a fork failed: the orphans made so far still report in
    os.close(ready_w)
    os.close(release_fd)
    os.waitpid(maker, 0)
    got = 0
    while got < count:
        chunk = os.read(ready_r, 65536)
        if not chunk:  # every orphan closed its end, yet some never reported
            print(f"error: only {got} of {count} orphans started", flush=True)
            return 1
        got += len(chunk)
    os.close(ready_r)
    print(f"ready {count} {os.getpid()}", flush=True)
    while True:
        signal.pause()


if __name__ == "__main__":
    sys.exit(main())
