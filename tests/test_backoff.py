"""The restart policy on its own: delays, the failure count, the window."""

from __future__ import annotations

import random

from graceful._supervise.backoff import Backoff


def policy(max_restarts: int = 3, window: float = 60.0) -> Backoff:
    return Backoff(0.1, 1.0, max_restarts, window, rng=random.Random(7))


def test_delays_double_up_to_the_maximum_with_equal_jitter() -> None:
    b = policy(max_restarts=100)
    delays = [b.exited(float(t), counted=True) for t in range(8)]
    for k, delay in enumerate(delays):
        full = min(1.0, 0.1 * 2**k)
        assert delay is not None and full / 2 <= delay <= full, (k, delay)
    assert delays[-1] is not None and delays[-1] >= 0.5  # capped, not reset


def test_a_crash_after_running_still_waits() -> None:
    b = policy()
    b.started()
    delay = b.exited(0.0, counted=True)
    assert delay is not None and delay >= 0.05


def test_more_early_exits_than_max_restarts_fail() -> None:
    b = policy(max_restarts=3)
    assert [b.exited(float(t), counted=False) is None for t in range(4)] == [
        False,
        False,
        False,
        True,
    ]


def test_a_counted_start_resets_the_failure_count() -> None:
    b = policy(max_restarts=2)
    for t in range(2):
        assert b.exited(float(t), counted=False) is not None
    b.started()
    for t in range(2, 4):
        assert b.exited(float(t), counted=False) is not None
    assert b.exited(4.0, counted=False) is None


def test_exits_older_than_the_window_are_forgotten() -> None:
    b = policy(max_restarts=1, window=10.0)
    assert b.exited(0.0, counted=False) is not None
    assert b.exited(11.0, counted=False) is not None  # the first one left the window
    assert b.exited(12.0, counted=False) is None
    fresh = policy(max_restarts=100, window=10.0)
    for t in range(5):
        fresh.exited(float(t), counted=True)
    delay = fresh.exited(100.0, counted=True)  # all five long gone: back to the first delay
    assert delay is not None and delay <= 0.1
