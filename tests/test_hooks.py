"""The hook registry and runner, in-process (pytest-asyncio)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from graceful import ShutdownContext, on_shutdown
from graceful._core.deadline import Deadline
from graceful._core.hooks import run_hooks, take_hooks

# Each test starts with no hook registered; the others' are back afterwards.
pytestmark = pytest.mark.usefixtures("own_hooks")


def context(deadline: Deadline) -> ShutdownContext:
    return ShutdownContext("test", None, 0, deadline)


async def test_hooks_run_last_registered_first_sync_and_async() -> None:
    order: list[str] = []

    @on_shutdown
    def first() -> None:
        order.append("first")

    @on_shutdown(timeout=1)
    async def second(ctx: ShutdownContext) -> None:
        order.append(f"second {ctx.reason}")

    @on_shutdown
    def third(ctx: ShutdownContext, extra: int = 0) -> None:
        order.append(f"third in thread {threading.current_thread() is not threading.main_thread()}")

    deadline = Deadline(5)
    results = await run_hooks(take_hooks(), context(deadline), deadline)
    assert order == ["third in thread True", "second test", "first"]
    assert results.ok == [
        "test_hooks_run_last_registered_first_sync_and_async.<locals>.third",
        "test_hooks_run_last_registered_first_sync_and_async.<locals>.second",
        "test_hooks_run_last_registered_first_sync_and_async.<locals>.first",
    ]


async def test_timeout_is_min_of_own_and_time_left() -> None:
    release = threading.Event()

    @on_shutdown(timeout=0.05)
    def blocks() -> None:
        release.wait(30)

    @on_shutdown(timeout=30)
    async def awaits() -> None:
        await asyncio.Event().wait()

    deadline = Deadline(0.4)  # ~0.34 s left: the async hook is bounded by it, not by 30 s
    results = await run_hooks(take_hooks(), context(deadline), deadline)
    assert [n.rsplit(".", 1)[1] for n in results.timed_out] == ["awaits", "blocks"]
    assert results.ok == [] and results.failed == []

    # Its own timeout, not the deadline: with 20 s left, 0.05 s is what stops it.
    on_shutdown(timeout=0.05)(blocks)
    long = Deadline(20.0)
    results = await run_hooks(take_hooks(), context(long), long)
    release.set()
    assert [n.rsplit(".", 1)[1] for n in results.timed_out] == ["blocks"]
    assert long.elapsed() < 10  # far below what the deadline would have allowed


async def test_failing_hooks_do_not_stop_the_others() -> None:
    ran: list[str] = []

    @on_shutdown
    def last() -> None:
        ran.append("last")

    @on_shutdown
    async def cancelled_itself() -> None:
        raise asyncio.CancelledError

    @on_shutdown
    def raises() -> None:
        raise KeyError("x")

    deadline = Deadline(5)
    results = await run_hooks(take_hooks(), context(deadline), deadline)
    assert ran == ["last"]
    assert [n.rsplit(".", 1)[1] for n in results.failed] == ["raises", "cancelled_itself"]


def test_hooks_are_taken_once() -> None:
    on_shutdown(lambda: None)
    assert len(take_hooks()) == 1
    assert take_hooks() == []
