"""When a supervised process is restarted, and when it has failed for good.

Two counts, kept apart on purpose:

* The **delay** before a restart doubles with every restart inside the window,
  from ``initial`` up to ``maximum``, and starts again from ``initial`` after a run
  that lasted longer than the delay before it (up for longer than it was down:
  that restart helped). So a process that crashes at once backs off quickly,
  while one that runs a while and crashes is restarted after ``initial`` each time,
  not after a delay that kept growing (supervisord restarts at once; Kubernetes'
  CrashLoopBackOff doubles to 5 minutes and resets after 10 minutes of running).
* The **failure count** holds only the starts that did not count: exits before
  ``min_uptime`` (or before ``READY=1`` for a program that reports readiness).
  It resets once a start counts (supervisord's ``startsecs``/``startretries``);
  more than ``max_restarts`` of them within the window mark the process failed.

The curve with the defaults (0.5, 30): restarts after crashes at start wait 0.5,
1, 2, 4, 8, 16, 30, 30 ... seconds (each drawn between half and all of that:
"equal jitter", so processes that crashed together do not restart together), and
the sixth early exit within 60 s marks the process failed.
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
        self._delay = 0.0  # the last delay given

    def started(self) -> None:
        """The process ran for ``min_uptime``: its start counted, the failure count resets."""
        self._early.clear()

    def exited(self, now: float, counted: bool, uptime: float) -> float | None:
        """An exit that calls for a restart, after a run of ``uptime`` seconds: the
        delay before it, or None when the process has failed (more than
        ``max_restarts`` early exits in the window)."""
        self._forget(now)
        if counted and uptime > self._delay:
            self._restarts.clear()  # up for longer than it was down: start over
        if not counted:
            self._early.append(now)
            if len(self._early) > self.max_restarts:
                return None
        self._restarts.append(now)
        doublings = min(len(self._restarts) - 1, 64)  # past the maximum long before
        full = min(self.maximum, self.initial * 2.0**doublings)
        self._delay = full / 2 + self._rng.random() * full / 2
        return self._delay

    def early_exits(self) -> int:
        return len(self._early)

    def _forget(self, now: float) -> None:
        for times in (self._restarts, self._early):
            while times and times[0] <= now - self.window:
                times.popleft()
