"""Dockerfile.web.example, the stateless web example (uvicorn), built and run with
podman: it stops cleanly, and it keeps serving during the drain delay, which is
what makes a rolling update with maxUnavailable: 0 lose no request."""

from __future__ import annotations

import json
import time

import pytest

from ._podman import APP_UID, HEALTH_PORT, WEB_PORT, podman
from .conftest import Podman

pytestmark = pytest.mark.timeout(300)


def test_web_image_has_the_documented_stop_settings(web_image: str) -> None:
    info = json.loads(podman("image", "inspect", web_image).stdout)[0]
    config = info["Config"]
    assert config["Entrypoint"] == ["python", "-m", "graceful", "examples.web_uvicorn:main"]
    assert not config.get("Cmd")
    assert config["User"] == f"{APP_UID}:{APP_UID}"
    assert config["StopSignal"] == "SIGTERM"
    assert "Volumes" not in config or not config["Volumes"]  # stateless
    assert sorted(config["ExposedPorts"]) == sorted([f"{HEALTH_PORT}/tcp", f"{WEB_PORT}/tcp"])
    assert info["Healthcheck"]["Test"] == ["CMD", "python", "-m", "graceful", "probe", "ready"]
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["PORT"] == str(WEB_PORT)
    assert env["GRACEFUL_DRAIN_DELAY"] == "0"
    assert [key for key in env if key.startswith("PIP_")] == []


def test_web_image_serves_and_podman_stop_exits_0(containers: Podman, web_image: str) -> None:
    container = containers.run(image=web_image)
    container.wait_for_http(WEB_PORT)
    status, body = container.http_get("/", port=WEB_PORT)["/"]
    assert status == 200 and body.startswith("hello from"), body
    elapsed, code = container.stop(timeout=10)
    assert code == 0, container.logs.text()
    assert elapsed < 5.0, f"podman stop took {elapsed:.2f} s of the 10 s grace"
    container.logs.expect("hook: the server has drained")


def test_web_keeps_serving_during_the_drain_delay(containers: Podman, web_image: str) -> None:
    drain = 8.0  # long enough for the request below on a busy machine
    settings = {"GRACEFUL_GRACE": "20", "GRACEFUL_DRAIN_DELAY": f"{drain:g}"}
    container = containers.run(image=web_image, env=settings)
    container.wait_for_http(WEB_PORT)

    signalled = time.monotonic()
    podman("kill", "--signal", "TERM", container.name)
    container.logs.expect("SIGTERM received")
    status, body = container.http_get("/", port=WEB_PORT)["/"]
    assert status == 200 and body.startswith("hello from"), body
    assert container.inspect("{{.State.Running}}") == "true"  # still inside the drain

    assert container.wait_exit(timeout=40) == 0, container.logs.text()
    assert time.monotonic() - signalled >= drain
    container.logs.expect("hook: the server has drained")
