"""When a supervised process is restarted, and when it has failed for good.

Two counts, kept apart on purpose:

* The **delay** before a restart grows with every restart inside the window,
  whether the process crashed at once or after it had been running for a while.
  Restarting a process that had been running without any delay (what supervisord
  does once ``startsecs`` passed) is how a service that crashes every few seconds
  floods its logs and its dependencies.
* The **failure count** holds only the starts that did not count: exits before
  ``min_uptime``. It resets once the process has run that long (supervisord's
  ``startsecs``/``startretries``); more than ``max_restarts`` of them within the
  window mark the process failed.

Jitter: each delay is drawn between half and all of the exponential value
("equal jitter"), so processes that crashed together do not restart together,
and a delay never drops below half of the one before.
"""

from __future__ import annotations

import random
from collections import deque


class Backoff:
    """The restart policy of one managed process. Times are on one monotonic clock."""

    def __init__(
        self,
        initial: float,
        maximum: float,
        max_restarts: int,
        window: float,
        rng: random.Random | None = None,
    ) -> None:
        self.initial = initial
        self.maximum = maximum
        self.max_restarts = max_restarts
        self.window = window
        self._rng = rng or random.Random()
        self._restarts: deque[float] = deque()  # every restart in the window
        self._early: deque[float] = deque()  # exits before min_uptime since the last counted start

    def started(self) -> None:
        """The process ran for ``min_uptime``: its start counted, the failure count resets."""
        self._early.clear()

    def exited(self, now: float, counted: bool) -> float | None:
        """An exit that calls for a restart: the delay before it, or None when the
        process has failed (more than ``max_restarts`` early exits in the window)."""
        self._forget(now)
        if not counted:
            self._early.append(now)
            if len(self._early) > self.max_restarts:
                return None
        self._restarts.append(now)
        doublings = min(len(self._restarts) - 1, 64)  # past the maximum long before
        full = min(self.maximum, self.initial * 2.0**doublings)
        return full / 2 + self._rng.random() * full / 2

    def early_exits(self) -> int:
        return len(self._early)

    def _forget(self, now: float) -> None:
        for times in (self._restarts, self._early):
            while times and times[0] <= now - self.window:
                times.popleft()
