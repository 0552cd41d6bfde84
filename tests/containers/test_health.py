"""The image's health interface: HEALTHCHECK through `python -m graceful probe`, and
/readyz failing during the drain delay while the app keeps working."""

from __future__ import annotations

import pytest

from ._podman import WEB_PORT, podman
from .conftest import Podman

pytestmark = pytest.mark.timeout(300)


def test_healthcheck_run_passes_while_the_app_runs(containers: Podman) -> None:
    # Without systemd podman never schedules the HEALTHCHECK itself; `healthcheck run`
    # runs the image's command once, as the scheduler would.
    container = containers.run()
    container.logs.expect("counter started")
    result = podman("healthcheck", "run", container.name, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert container.inspect("{{.State.Health.Status}}") == "healthy"
    assert container.stop()[1] == 0


def test_readyz_fails_during_the_drain_delay_while_the_app_works_on(containers: Podman) -> None:
    # A drain long enough for the checks below (five podman commands) on a busy machine.
    settings = {"GRACEFUL_GRACE": "20", "GRACEFUL_DRAIN_DELAY": "8", "COUNTER_TICK": "0.1"}
    container = containers.run(env=settings)
    container.logs.expect("counter started")
    assert container.http_get("/readyz")["/readyz"][0] == 200

    podman("kill", "--signal", "TERM", container.name)
    container.logs.expect("SIGTERM received")  # readiness is marked first, then this line
    # The app goes on working during the delay: it counts on after this report.
    podman("kill", "--signal", "USR1", container.name)
    reported = count(container.logs.expect("SIGUSR1: jobs_done="))
    answers = container.http_get("/readyz", "/livez")
    assert answers["/readyz"][0] == 503, answers
    assert answers["/livez"][0] == 200, answers  # alive: nothing should restart it
    assert container.exec("python", "-m", "graceful", "probe", "ready", check=False).returncode == 1
    assert podman("healthcheck", "run", container.name, check=False).returncode != 0
    assert container.inspect("{{.State.Running}}") == "true"  # all of it during the drain

    assert container.wait_exit(timeout=30) == 0, container.logs.text()
    assert count(container.logs.expect("saved jobs_done=")) > reported


def count(line: str) -> int:
    return int(line.split("jobs_done=")[1].split()[0])


def test_web_fails_readyz_but_serves_requests_during_the_drain(
    containers: Podman, web_image: str
) -> None:
    """What a rolling update relies on: taken out of rotation, still serving."""
    settings = {"GRACEFUL_GRACE": "20", "GRACEFUL_DRAIN_DELAY": "8"}
    container = containers.run(image=web_image, env=settings)
    container.wait_for_http(WEB_PORT)
    assert container.http_get("/readyz")["/readyz"][0] == 200

    podman("kill", "--signal", "TERM", container.name)
    container.logs.expect("SIGTERM received")
    assert container.http_get("/readyz")["/readyz"][0] == 503
    status, body = container.http_get("/", port=WEB_PORT)["/"]
    assert status == 200 and body.startswith("hello from"), body
    assert container.inspect("{{.State.Running}}") == "true"  # all of it during the drain
    assert container.wait_exit(timeout=40) == 0, container.logs.text()
