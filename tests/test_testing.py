"""graceful.testing: an app's stop tested in-process, with pytest-asyncio and plain pytest,
leaving nothing behind."""

from __future__ import annotations

import asyncio
import signal
import sys
import threading

import pytest

import graceful
import graceful.testing

# Each test starts with no hook registered; the others' are back afterwards.
pytestmark = pytest.mark.usefixtures("own_hooks")


def graceful_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("graceful")]


async def test_stop_as_sigterm_runs_the_sequence_and_reports_it() -> None:
    saved: list[str] = []
    before = (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT))
    loop = asyncio.get_running_loop()
    factory = loop.get_task_factory()

    @graceful.on_shutdown
    def save_state(ctx: graceful.ShutdownContext) -> None:
        saved.append(ctx.reason)

    async def main() -> None:
        await asyncio.Event().wait()

    async with graceful.testing.running(main, grace=2) as app:
        await app.started()
        assert not app.stopping
        outcome = await app.stop()
    assert outcome.exit_code == 0
    assert outcome.reason == "SIGTERM"
    assert outcome.hooks_ok == [
        "test_stop_as_sigterm_runs_the_sequence_and_reports_it.<locals>.save_state"
    ]
    assert outcome.tasks_cancelled == 1
    assert saved == ["SIGTERM"]
    # nothing left behind: handlers, task factory, graceful's threads, the run itself
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before
    assert loop.get_task_factory() is factory
    assert graceful_threads() == []
    assert not graceful.is_shutting_down()


SLEEPER = (sys.executable, "-c", "import time; time.sleep(30)")


async def test_only_the_apps_own_tasks_and_children_are_stopped() -> None:
    mine = asyncio.ensure_future(asyncio.sleep(30))  # the test's task: not the app's
    outside = await asyncio.create_subprocess_exec(*SLEEPER)
    started: list[asyncio.subprocess.Process] = []

    async def main() -> None:
        started.append(await asyncio.create_subprocess_exec(*SLEEPER))
        asyncio.create_task(asyncio.sleep(30))
        await asyncio.Event().wait()

    try:
        async with graceful.testing.running(main, grace=2) as app:
            await app.started()
            outcome = await app.stop()
        assert outcome.tasks_cancelled == 2  # main and its task
        assert outcome.children_terminated == 1
        assert await asyncio.wait_for(started[0].wait(), 10) == -signal.SIGTERM
        assert not mine.done() and outcome.exit_code == 0
        assert outcome.children_killed == 0
        assert outside.returncode is None  # the test's own child was left alone
    finally:
        mine.cancel()
        outside.kill()
        await asyncio.wait_for(outside.wait(), 10)


async def test_a_listening_main_drains_and_a_hung_hook_is_reported() -> None:
    async def main() -> None:
        ctx = await graceful.wait_for_shutdown()
        assert ctx.drain_time_left() > 0
        await asyncio.sleep(0.05)

    @graceful.on_shutdown(timeout=0.1)
    async def hangs() -> None:
        await asyncio.Event().wait()

    async with graceful.testing.running(main, grace=2) as app:
        await app.started()
        outcome = await app.stop(signal.SIGINT)
    assert outcome.reason == "SIGINT"
    assert outcome.drain_cut == []
    assert outcome.hooks_timed_out == [
        "test_a_listening_main_drains_and_a_hung_hook_is_reported.<locals>.hangs"
    ]
    assert outcome.exit_code == 1


async def test_main_ending_by_itself() -> None:
    async def main() -> int:
        return 4

    async with graceful.testing.running(main) as app:
        outcome = await app.wait()
    assert (outcome.exit_code, outcome.reason) == (4, "main returned")


def test_plain_pytest_run_stops_once_main_runs() -> None:
    ran: list[str] = []

    @graceful.on_shutdown
    def hook() -> None:
        ran.append("hook")

    async def main() -> None:
        await asyncio.Event().wait()

    outcome = graceful.testing.run(main, grace=2)
    assert outcome.exit_code == 0 and ran == ["hook"]
    assert graceful_threads() == []


def test_plain_pytest_run_with_a_condition() -> None:
    ticks: list[int] = []
    enough = asyncio.Event()

    async def main() -> None:
        while True:
            ticks.append(1)
            if len(ticks) == 3:
                enough.set()
            await asyncio.sleep(0)

    async def three_ticks() -> None:
        await enough.wait()

    outcome = graceful.testing.run(main, stop_when=three_ticks, grace=2)
    assert len(ticks) >= 3 and outcome.exit_code == 0


async def test_one_app_at_a_time() -> None:
    async def main() -> None:
        await asyncio.Event().wait()

    async with graceful.testing.running(main) as app:
        await app.started()
        with pytest.raises(graceful.UsageError, match="one app at a time"):
            async with graceful.testing.running(main):
                pass
        await app.stop()
