"""The web examples, tested the way a user tests their own service: in-process with
graceful.testing and a real HTTP client, a request in flight when the stop comes."""

from __future__ import annotations

import asyncio
from types import ModuleType

import aiohttp
import pytest

import graceful.testing
from examples import web_aiohttp, web_hypercorn, web_uvicorn
from graceful._core import hooks as _hooks

from .conftest import free_port


async def until_up(url: str, session: aiohttp.ClientSession) -> None:
    async with asyncio.timeout(20) if hasattr(asyncio, "timeout") else _noop():
        while True:
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.02)


class _noop:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None


@pytest.mark.parametrize(
    "example", [web_uvicorn, web_aiohttp, web_hypercorn], ids=lambda m: m.__name__
)
async def test_a_request_in_flight_is_served_then_the_hook_runs(
    example: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # All three examples are imported here, and each registered its hook: keep the
    # one of the example under test (one service per process is the normal case).
    everyone = _hooks.snapshot()
    _hooks.restore([h for h in everyone if h.func.__module__ == example.__name__])
    try:
        await serve_one_request(example, monkeypatch, capsys)
    finally:
        _hooks.restore(everyone)


async def serve_one_request(
    example: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    monkeypatch.setattr(example, "PORT", port)
    monkeypatch.setattr(example, "HOST", "127.0.0.1")
    url = f"http://127.0.0.1:{port}/"
    async with aiohttp.ClientSession() as session:
        # With a drain delay the server keeps accepting for a second after the stop, as
        # in a rolling update: the request sent at the stop is served whichever of the
        # two the loop runs first.
        async with graceful.testing.running(example.main, grace=4, drain_delay=1) as app:
            await app.started()
            await until_up(url, session)
            slow = asyncio.ensure_future(session.get(url + "?delay=0.5"))
            outcome = await app.stop()
        response = await slow
        assert response.status == 200
        assert response.headers.get("Connection", "").lower() == "close"
        assert (await response.text()).startswith("hello from")
    assert outcome.exit_code == 0
    assert outcome.hooks_ok == ["goodbye"]
    assert outcome.drain_cut == []
    printed = capsys.readouterr().out
    assert printed.index("(after the requests in flight)") < printed.index(
        "hook: the server has drained"
    )
