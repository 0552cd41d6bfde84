"""Find the app's descendant processes, signal them, and wait for them to die,
without ever reaping one.

Reaping is the trap: a ``waitpid`` (or ``psutil.wait_procs``, which calls it for
direct children) on a child that ``subprocess.Popen`` or asyncio owns steals its
exit status; ``Popen`` then reports 0 and uvloop's ``Process.wait()`` never
returns. So this module only observes.

On Linux each descendant found is held by a pidfd. A pidfd names one process for
good (no PID-reuse race), keeps naming it after its parent dies and it is
re-parented out of our tree, and becomes readable when the process has exited,
before and without anyone reaping it. Descendants are found by one pass over
``/proc/*/stat``; psutil does the same pass, but importing psutil costs about
10 ms here, which would land on the SIGTERM-to-exit path (or on start-up if
imported early), and the PID 1 init must stay small.

Elsewhere (or on a kernel without pidfd) psutil finds the processes and is polled
for their death; it still never waits on them.
"""

from __future__ import annotations

import os
import select
import signal
import time

# typing is not imported at run time: this module is loaded before the fork into
# the init, which should stay small (mypy treats TYPE_CHECKING as True).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

_HAVE_PIDFD = hasattr(os, "pidfd_open") and hasattr(signal, "pidfd_send_signal")
_POLL_INTERVAL = 0.02  # only for the psutil fallback


def _proc_parents() -> dict[int, tuple[int, str]]:
    """pid -> (ppid, state) for every process in /proc."""
    table: dict[int, tuple[int, str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                data = f.read()
        except OSError:  # exited while we looked
            continue
        # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
        fields = data[data.rfind(b")") + 2 :].split(b" ", 2)
        table[int(entry)] = (int(fields[1]), fields[0].decode())
    return table


def descendant_pids(root: int | None = None) -> list[int]:
    """Living (not zombie) descendants of ``root`` (default: this process), parents first.

    Walks ``/proc/PID/task/TID/children``, so the cost follows the size of the
    app's own tree; a scan of all of ``/proc`` costs about 16 us per process on
    the host, 30 ms with 2,000 processes. Kernels without that file get the scan.
    """
    root = os.getpid() if root is None else root
    try:
        return _walk(root)
    except FileNotFoundError:
        if not os.path.exists(f"/proc/{root}/task/{root}/children"):
            return _scan(root)
        raise


def _walk(root: int) -> list[int]:
    found: list[int] = []
    todo = _children(root)
    while todo:
        pid = todo.pop()
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                data = f.read()
            kids = _children(pid)
        except (FileNotFoundError, ProcessLookupError):  # exited while we looked
            continue
        if data[data.rfind(b")") + 2 : data.rfind(b")") + 3] != b"Z":
            found.append(pid)
        todo.extend(kids)
    return found


def _children(pid: int) -> list[int]:
    """Direct children of ``pid``; the kernel lists them per thread that forked them."""
    kids: list[int] = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                kids.extend(int(k) for k in f.read().split())
        except FileNotFoundError:  # the thread ended
            continue
    return kids


def _scan(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    table = _proc_parents()
    for pid, (ppid, _state) in table.items():
        children.setdefault(ppid, []).append(pid)
    found: list[int] = []
    todo = list(children.get(root, ()))
    while todo:
        pid = todo.pop()
        if table[pid][1] != "Z":
            found.append(pid)
        todo.extend(children.get(pid, ()))
    return found


class Descendants:
    """The descendants of a process seen so far, each held until ``close()``.

    ``discover()`` can be called again to pick up processes started since; a
    process once found stays tracked even after it is re-parented elsewhere.
    """

    def __init__(self, root: int | None = None, *, use_pidfd: bool = _HAVE_PIDFD) -> None:
        self.root = os.getpid() if root is None else root
        self._use_pidfd = use_pidfd and _HAVE_PIDFD
        self._fds: dict[int, int] = {}  # pid -> pidfd
        self._procs: dict[int, Any] = {}  # pid -> psutil.Process (fallback)

    def discover(self) -> list[int]:
        """Track the descendants not tracked yet; return their pids."""
        new: list[int] = []
        if self._use_pidfd:
            for pid in descendant_pids(self.root):
                if pid in self._fds:
                    continue
                try:
                    self._fds[pid] = os.pidfd_open(pid)
                except ProcessLookupError:
                    continue
                new.append(pid)
            return new
        import psutil

        try:
            procs = psutil.Process(self.root).children(recursive=True)
        except psutil.NoSuchProcess:
            return new
        for proc in procs:
            if proc.pid not in self._procs:
                self._procs[proc.pid] = proc
                new.append(proc.pid)
        return new

    def alive(self) -> list[int]:
        """The tracked processes that have not exited (zombies count as exited)."""
        if self._use_pidfd:
            if not self._fds:
                return []
            poller = select.poll()
            for fd in self._fds.values():
                poller.register(fd, select.POLLIN)
            dead = {fd for fd, _ in poller.poll(0)}
            return [pid for pid, fd in self._fds.items() if fd not in dead]
        return [pid for pid, proc in self._procs.items() if _psutil_alive(proc)]

    def send(self, sig: int, pids: Iterable[int] | None = None) -> list[int]:
        """Send ``sig`` to the given (default: all living) tracked processes."""
        sent: list[int] = []
        for pid in self.alive() if pids is None else pids:
            try:
                if self._use_pidfd:
                    signal.pidfd_send_signal(self._fds[pid], sig)
                else:
                    self._procs[pid].send_signal(sig)
            except OSError:  # gone, or not ours to signal
                continue
            sent.append(pid)
        return sent

    def wait(self, timeout: float) -> list[int]:
        """Block until every tracked process has exited or ``timeout`` passed;
        return the ones still alive. Reaps nothing."""
        end = time.monotonic() + max(0.0, timeout)
        while True:
            alive = self.alive()
            left = end - time.monotonic()
            if not alive or left <= 0:
                return alive
            if self._use_pidfd:
                poller = select.poll()
                for pid in alive:
                    poller.register(self._fds[pid], select.POLLIN)
                poller.poll(max(1, int(left * 1000)))
            else:
                time.sleep(min(_POLL_INTERVAL, left))

    async def wait_async(self, timeout: float) -> list[int]:
        """Like ``wait()``, without blocking the event loop.

        **Cancellation:** stops waiting; the processes stay tracked.
        """
        import asyncio  # here, not at the top: the init imports this module and stays small

        alive = self.alive()
        if not alive or timeout <= 0:
            return alive
        if not self._use_pidfd:
            end = time.monotonic() + timeout
            while alive and time.monotonic() < end:
                await asyncio.sleep(_POLL_INTERVAL)
                alive = self.alive()
            return alive
        loop = asyncio.get_running_loop()
        exited = asyncio.Event()
        waiting = set(alive)
        fds = [self._fds[pid] for pid in alive]

        def on_exit(pid: int) -> None:
            loop.remove_reader(self._fds[pid])
            waiting.discard(pid)
            if not waiting:
                exited.set()

        for pid in alive:
            loop.add_reader(self._fds[pid], on_exit, pid)
        try:
            await asyncio.wait_for(exited.wait(), timeout)
        except asyncio.TimeoutError:
            pass
        finally:
            for fd in fds:
                loop.remove_reader(fd)
        return self.alive()

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
        self._procs.clear()


def _psutil_alive(proc: Any) -> bool:
    import psutil

    try:
        return bool(proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False
