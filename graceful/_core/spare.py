"""One file descriptor held back for the stop.

An app out of descriptors (a connection leak, a flood on its port) must still get
its sequence and its hooks: loading the stop path, reading ``/proc`` and a hook's own
``open()`` each need one. The spare is taken before the app is imported and freed
when the stop begins; the sequence's steps then use that slot one after the other.

A freed slot goes to whichever thread opens a descriptor first. The health server,
which retries ``accept()`` while the process is out of descriptors, took it in tests
(the hook's ``open()`` then failed), so it asks under :attr:`Spare.lock` and takes
nothing once the spare is freed, if it ever found the process out of descriptors.
"""

from __future__ import annotations

import os
import threading


class Spare:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.freed = False
        self._fd: int | None = None

    def keep(self) -> None:
        try:
            self._fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:  # out of descriptors already: nothing to hold back
            self._fd = None

    def free(self) -> None:
        with self.lock:
            self.freed = True
            fd, self._fd = self._fd, None
            if fd is not None:
                os.close(fd)
