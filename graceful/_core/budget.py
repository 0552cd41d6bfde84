"""How the sequence's window is split between the drain, the cancellation and the hooks.

The drain comes first and is the part users size ``--grace`` for ("the longest
request plus a margin", as every server's documentation says), so it may run
until only what the rest of the sequence needs is left:

- the hooks' declared timeouts, ``HOOK_DEFAULT`` for a hook that declares none
  (only the hooks that will run: all of them once ``main`` started, otherwise
  those registered with ``always=True``);
- the cancellation's reserve: ``CANCEL_RESERVE``, at most ``CANCEL_SHARE`` of the
  time left, for the tasks to unwind once they are cancelled.

The children (phases 2 and 5) need no slice of their own: they got SIGTERM before
the drain and use the same seconds in parallel. The drain never gets less than
``MIN_DRAIN_SHARE`` of the time left, so hooks that declare more than the window
holds still leave the requests a part of it (they are then cut short; the run
says so at start-up). What a step leaves unused flows to the next.

A fixed share (60 % for the drain, the rule before this one) cut requests that fit
the window while half of it went unused with no hooks, or with small ones.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

HOOK_DEFAULT = 1.0
"""Seconds reserved for a hook that declares no timeout."""
CANCEL_RESERVE = 0.5
"""Seconds reserved for cancelled tasks to unwind..."""
CANCEL_SHARE = 0.1
"""...but at most this share of the time left."""
MIN_DRAIN_SHARE = 0.2
"""The drain's share of the time left when the hooks' reserves exceed the window."""


class Split:
    """Seconds for each step of the sequence, from its start (phase 1)."""

    __slots__ = ("drain", "cancel", "hooks", "hooks_wanted")

    def __init__(self, drain: float, cancel: float, hooks: float, hooks_wanted: float) -> None:
        self.drain = drain
        self.cancel = cancel
        self.hooks = hooks
        self.hooks_wanted = hooks_wanted
        """What the hooks declared (with the default for the others), before any cap."""

    def short(self) -> bool:
        """True when the hooks' declared timeouts do not fit the window."""
        return self.hooks < self.hooks_wanted


def hooks_reserve(timeouts: Iterable[float | None]) -> float:
    """Seconds the hooks with these declared timeouts (None: none declared) ask for."""
    return float(sum(HOOK_DEFAULT if t is None else t for t in timeouts))


def split(time_left: float, hook_timeouts: Iterable[float | None]) -> Split:
    """Split ``time_left`` seconds between the drain, the cancellation and the hooks."""
    time_left = max(0.0, time_left)
    wanted = hooks_reserve(hook_timeouts)
    cancel = min(CANCEL_RESERVE, time_left * CANCEL_SHARE)
    room = time_left * (1 - MIN_DRAIN_SHARE)  # at most this much is kept from the drain
    hooks = min(wanted, max(0.0, room - cancel))
    return Split(time_left - min(room, hooks + cancel), cancel, hooks, wanted)


def cancel_time(time_left: float, hooks: float) -> float:
    """How long, from the end of the drain, cancelled tasks may take to unwind: what
    is left beyond the hooks' reserve (at least the cancellation's own reserve), and
    never more than half of the time left, so a task that refuses to end cannot take
    the hooks' time."""
    time_left = max(0.0, time_left)
    own = min(CANCEL_RESERVE, time_left * CANCEL_SHARE)
    return min(time_left / 2, max(own, time_left - hooks))
