"""Makes orphans: plain script (not run under graceful), single-threaded, so fork is safe.

``orphan_maker.py hold N FD``: N grandchildren that block reading FD, orphaned at once
(their parents exit); prints their pids, one line, then exits. Closing the other end
of FD's pipe makes them all exit together.
``orphan_maker.py churn``: makes orphans that exit at once, in a loop, until killed.
"""

import os
import sys


def orphan(body_fd: int | None) -> int:
    """Fork a grandchild through a short-lived child; return the grandchild's pid."""
    r, w = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(r)
        grandchild = os.fork()
        if grandchild == 0:
            os.close(w)
            # Let go of our stdio: asyncio's Process.wait() on the maker returns only
            # once every holder of its stdout pipe has closed it.
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            if body_fd is not None:
                os.read(body_fd, 1)  # until EOF
            os._exit(0)
        os.write(w, str(grandchild).encode())
        os._exit(0)
    os.close(w)
    pid = int(os.read(r, 32))
    os.close(r)
    os.waitpid(child, 0)  # our own child: its parent is gone, the grandchild is orphaned
    return pid


if sys.argv[1] == "hold":
    count, fd = int(sys.argv[2]), int(sys.argv[3])
    pids = [orphan(fd) for _ in range(count)]
    print(" ".join(map(str, pids)), flush=True)
else:
    print("churning", flush=True)
    while True:
        orphan(None)
