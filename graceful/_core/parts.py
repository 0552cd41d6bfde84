"""The door through which parts of graceful that own processes join the stop.

The sequence knows nothing of the supervisor: a part that starts processes of its
own (``_supervise``, loaded only by apps that use it) registers here when it is
imported, and the sequence asks every registered part, in phase 2, to stop what it
owns (in its own order, with its own signals) and, in phase 5, waits for it. The
blanket SIGTERM of phase 2 leaves the processes a part owns to that part.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from .deadline import Deadline


class Stopping(Protocol):
    """What a part is stopping, from phase 2 on."""

    def signalled(self) -> int:
        """How many processes were sent their stop signal."""

    def killed(self) -> int:
        """How many had to be SIGKILLed."""

    async def wait(self, deadline: Deadline) -> None:
        """Until all have ended, at most until the deadline. **Cancellation:** only the
        wait ends."""

    def failed(self) -> bool:
        """Something went wrong that makes the exit code 1."""

    def summary(self) -> str:
        """One part of the summary line (``web=0 feed=SIGTERM``)."""

    def outcomes(self) -> dict[str, str]:
        """How each ended, by name (``{"web": "0", "stuck": "SIGKILL(killed)"}``)."""


class Part(Protocol):
    def owns(self) -> Callable[[int], bool]:
        """A test: is this pid one the part stops itself?"""

    def stop(self, deadline: Deadline) -> Stopping | None:
        """Phase 2: begin stopping; None when there is nothing to stop."""

    def processes(self) -> list[tuple[str, bool, int]]:
        """``(name, up, restarts)`` of each process it owns; safe from any thread."""


_parts: list[Part] = []


def register(part: Part) -> None:
    if part not in _parts:
        _parts.append(part)


def registered() -> list[Part]:
    return list(_parts)
