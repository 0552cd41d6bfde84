"""The Python API: graceful.run() in-process and from a script, and its guard rails."""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
from collections.abc import AsyncIterator

import pytest

import graceful
from graceful._core.hooks import take_hooks

from .conftest import APPS, Launcher, stop

# Each test starts with no hook registered; the others' are back afterwards.
pytestmark = pytest.mark.usefixtures("own_hooks")


def test_every_public_name_is_exported_once() -> None:
    assert len(graceful.__all__) == len(set(graceful.__all__))
    for name in graceful.__all__:
        assert getattr(graceful, name) is not None
    assert sorted(n for n in dir(graceful) if not n.startswith("_")) == sorted(graceful.__all__)


def test_run_in_process_restores_handlers_and_returns_the_code() -> None:
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    ran: list[str] = []

    @graceful.on_shutdown
    def hook(ctx: graceful.ShutdownContext) -> None:
        ran.append(f"{ctx.reason} {ctx.exit_code} {graceful.is_shutting_down()}")

    async def main() -> None:
        assert not graceful.is_shutting_down()
        graceful.request_shutdown(exit_code=6, reason="test over")
        await graceful.wait_for_shutdown()
        await asyncio.Event().wait()

    assert graceful.run(main, grace=2, loop="asyncio") == 6
    assert ran == ["test over 6 True"]
    assert {s: signal.getsignal(s) for s in before} == before
    assert not graceful.is_shutting_down()
    assert take_hooks() == []  # hooks run once and are gone


def test_run_accepts_a_coroutine_object() -> None:
    async def main() -> int:
        return 9

    assert graceful.run(main(), grace=1, loop="asyncio") == 9


def test_request_shutdown_from_another_thread() -> None:
    async def main() -> None:
        threading.Thread(target=graceful.request_shutdown, kwargs={"exit_code": 4}).start()
        await asyncio.Event().wait()

    assert graceful.run(main, grace=2, loop="asyncio") == 4


def test_outside_run_the_api_says_what_to_do() -> None:
    with pytest.raises(graceful.NotRunningError, match="start the app with graceful.run"):
        graceful.request_shutdown()
    with pytest.raises(graceful.NotRunningError):
        asyncio.run(graceful.wait_for_shutdown())
    assert graceful.is_shutting_down() is False


def test_run_inside_a_running_loop_is_refused() -> None:
    async def main() -> None:
        pass

    async def outer() -> None:
        with pytest.raises(graceful.UsageError, match="inside a running event loop"):
            graceful.run(main)

    asyncio.run(outer())


def test_run_from_a_thread_needs_handle_signals_false() -> None:
    errors: list[BaseException] = []
    codes: list[int] = []

    async def main() -> int:
        return 3

    def in_thread() -> None:
        try:
            graceful.run(main, loop="asyncio")
        except graceful.UsageError as exc:
            errors.append(exc)
        codes.append(graceful.run(main, loop="asyncio", handle_signals=False))

    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join(30)
    assert "main thread" in str(errors[0]) and "handle_signals=False" in str(errors[0])
    assert codes == [3]


def test_bad_arguments_raise_usage_errors() -> None:
    async def main() -> None:
        pass

    with pytest.raises(graceful.UsageError, match="grace=10"):
        graceful.run(main, grace=0)
    with pytest.raises(graceful.UsageError, match="loop must be one of"):
        graceful.run(main, loop="trio")  # type: ignore[arg-type]
    with pytest.raises(graceful.UsageError, match="timeout"):
        graceful.on_shutdown(timeout=-1)


def test_script_using_run_handles_sigterm_and_restores_handlers(launch: Launcher) -> None:
    app = launch.command([sys.executable, str(APPS / "programmatic.py"), launch.loop])
    app.expect("ready")
    assert stop(app) == 0
    assert app.events() == ["hook saved", "handlers restored True", "run returned 0"]


@pytest.mark.parametrize("code", [300, -1, True, "1"])
def test_request_shutdown_refuses_what_is_not_an_exit_status(code: object) -> None:
    with pytest.raises(graceful.UsageError, match="from 0 to 255"):
        graceful.request_shutdown(exit_code=code)  # type: ignore[arg-type]


def test_run_refuses_a_main_it_could_not_call_before_starting() -> None:
    async def needs(port: int) -> None:
        pass

    async def generator() -> AsyncIterator[None]:
        yield None

    with pytest.raises(graceful.TargetError, match="needs the argument"):
        graceful.run(needs)  # type: ignore[arg-type]
    with pytest.raises(graceful.TargetError, match="async generator function"):
        graceful.run(generator)  # type: ignore[arg-type]
