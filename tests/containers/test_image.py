"""Dockerfile.example, built and run with podman: how the container stops.

Each test starts its own container (no network, see conftest) and waits on what it
prints. `podman kill` and `podman stop` signal the container's PID 1, as Docker and
the kubelet do; graceful's init there forwards to the app, a child process of it.
"""

from __future__ import annotations

import json
import re

import pytest

from ._podman import (
    APP_UID,
    HEALTH_PORT,
    ROOT,
    STATE_DIR,
    Container,
    podman,
    poll_until,
    volume_path,
)
from .conftest import Podman

pytestmark = pytest.mark.timeout(300)

ENTRYPOINT = ["python", "-m", "graceful", "examples.counter:main"]
FAST = {"COUNTER_TICK": "0.05"}


def test_image_has_the_documented_stop_settings(image: str) -> None:
    info = json.loads(podman("image", "inspect", image).stdout)[0]
    config = info["Config"]
    assert config["Entrypoint"] == ENTRYPOINT  # exec form, no options baked in
    assert not config.get("Cmd")  # nothing appended to the entrypoint
    assert config["User"] == f"{APP_UID}:{APP_UID}"
    assert config["StopSignal"] == "SIGTERM"
    assert list(config["Volumes"]) == [STATE_DIR]
    assert list(config["ExposedPorts"]) == [f"{HEALTH_PORT}/tcp"]
    # (kept only by --format docker; podman shows it beside Config, not in it)
    assert info["Healthcheck"]["Test"] == ["CMD", "python", "-m", "graceful", "probe", "ready"]
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["GRACEFUL_GRACE"] == "10"  # docker stop's own default window
    assert env["GRACEFUL_DRAIN_DELAY"] == "0"  # nothing to drain under plain docker
    assert env["GRACEFUL_HEALTH_PORT"] == str(HEALTH_PORT)
    assert env["COUNTER_STATE"].startswith(STATE_DIR + "/")
    assert [key for key in env if key.startswith("PIP_")] == []  # no build flag leaked in


def test_image_installs_every_module_of_the_package(containers: Podman) -> None:
    """A real install (not the editable one of the dev venv): a subpackage missing from
    pyproject's package list is missing here."""
    source = ROOT / "graceful"
    expected = sorted(str(p.relative_to(source)) for p in source.rglob("*.py"))
    listing = (
        "import graceful, pathlib; root = pathlib.Path(graceful.__file__).parent;"
        " print('\\n'.join(sorted(str(p.relative_to(root)) for p in root.rglob('*.py'))))"
    )
    container = containers.run("--entrypoint", json.dumps(["python", "-c", listing]))
    assert container.wait_exit() == 0, container.logs.text()
    assert container.logs.drain() == expected


def test_app_is_a_child_of_graceful_init_and_nothing_runs_as_root(containers: Podman) -> None:
    container = containers.run()
    container.logs.expect("counter started")
    procs = {p["pid"]: p for p in container.processes()}
    init = procs[1]
    assert init["argv"] == ENTRYPOINT
    # The init forks the app: the same command line, a child of PID 1 (which PID it
    # gets depends on the runtime; under runc it is not 2).
    apps = [p for p in procs.values() if p["ppid"] == 1 and p["argv"] == ENTRYPOINT]
    assert len(apps) == 1, procs
    # Every process, the exec'd one that listed them included, runs as the image's user.
    assert {p["uid"] for p in procs.values()} == {APP_UID}


def test_podman_stop_saves_the_state_in_the_volume_and_exits_0(containers: Podman) -> None:
    volume = containers.volume()
    first = containers.run(env=FAST, volume=volume)
    first.logs.expect("jobs_done=3")
    elapsed, code = first.stop(timeout=10)
    assert code == 0, first.logs.text()
    assert elapsed < 5.0, f"podman stop took {elapsed:.2f} s of the 10 s grace"
    saved = int(match(r"saved jobs_done=(\d+)", first.logs.expect("saved jobs_done=")))
    assert saved >= 3
    # Read back through the volume: on the host, then by the next container.
    assert json.loads((volume_path(volume) / "counter.json").read_text()) == {"jobs_done": saved}
    second = containers.run(env=FAST, volume=volume)
    second.logs.expect(f"counter started at jobs_done={saved}")
    assert second.stop(timeout=10)[1] == 0


def test_shell_form_entrypoint_never_sees_sigterm(containers: Podman) -> None:
    """What the exec form avoids: `ENTRYPOINT python -m graceful ...` (shell form) runs
    `/bin/sh -c ...` as PID 1, which has no SIGTERM handler, so the kernel drops the
    signal; podman waits the whole timeout, then SIGKILLs. Nothing is saved."""
    shell_form = '["/bin/sh", "-c", "python -m graceful examples.counter:main"]'
    container = containers.run("--entrypoint", shell_form)
    container.logs.expect("counter started")
    init = next(p for p in container.processes() if p["pid"] == 1)
    assert init["argv"][:2] == ["/bin/sh", "-c"], init
    elapsed, code = container.stop(timeout=2)
    assert code == 137  # 128 + SIGKILL
    assert elapsed >= 2.0
    assert [line for line in container.logs.drain() if "saved" in line] == []


def test_sigusr1_from_podman_kill_reaches_the_app(containers: Podman) -> None:
    container = containers.run()
    container.logs.expect("counter started")  # printed after its SIGUSR1 handler is set
    podman("kill", "--signal", "USR1", container.name)
    container.logs.expect("SIGUSR1: jobs_done=")
    assert container.stop()[1] == 0


def test_grace_given_with_env_is_used(containers: Podman) -> None:
    container = containers.run(env={"GRACEFUL_GRACE": "3"})
    container.logs.expect("counter started")
    assert container.stop(timeout=10)[1] == 0
    line = container.logs.expect("shutting down within")
    assert float(match(r"shutting down within ([\d.]+) s", line)) == 3.0


def test_grace_given_with_env_bounds_a_command_that_ignores_sigterm(containers: Podman) -> None:
    """The image's python and environment, with graceful's init in front of a command
    that ignores SIGTERM: the init SIGKILLs it at the end of GRACEFUL_GRACE (minus the
    safety margin), long before podman's own 10 s."""
    stubborn = ["python", "-m", "graceful", "--", "sh", "-c", "trap '' TERM; echo ready; sleep 600"]
    container = containers.run("--entrypoint", json.dumps(stubborn), env={"GRACEFUL_GRACE": "3"})
    container.logs.expect("ready")
    elapsed, code = container.stop(timeout=10)
    assert code == 137, container.logs.text()  # the command was SIGKILLed by the init
    assert 2.0 <= elapsed < 6.0, f"stopped after {elapsed:.2f} s; GRACEFUL_GRACE was 3 s"


MAKE_ORPHANS = "for i in 1 2 3 4 5 6 7 8; do sleep 600 >/dev/null 2>&1 & echo $!; done"


def make_and_kill_orphans(container: Container) -> list[int]:
    """Eight processes whose parent (a shell run by `podman exec`) has exited: the
    kernel gives them to the container's PID 1. Then they are killed, which makes
    them zombies until PID 1 reaps them."""
    orphans = [int(pid) for pid in container.exec("sh", "-c", MAKE_ORPHANS).stdout.split()]
    procs = {p["pid"]: p for p in container.processes()}
    assert [procs[pid]["ppid"] for pid in orphans] == [1] * len(orphans), procs
    container.exec("sh", "-c", "kill -KILL " + " ".join(map(str, orphans)))
    return orphans


def zombies(container: Container) -> list[int]:
    return [p["pid"] for p in container.processes() if p["state"] == "Z"]


def test_orphans_are_reaped_by_the_init(containers: Podman) -> None:
    container = containers.run()
    container.logs.expect("counter started")
    orphans = make_and_kill_orphans(container)

    def reaped() -> bool:
        pids = {p["pid"] for p in container.processes()}
        return not pids & set(orphans)

    assert poll_until(reaped, timeout=10), f"left: {container.processes()}"
    assert zombies(container) == []
    assert container.stop()[1] == 0


def test_without_the_init_orphans_stay_zombies(containers: Podman) -> None:
    """The check above can fail: with GRACEFUL_INIT=off the app itself is PID 1, and
    it never reaps what it did not start."""
    container = containers.run(env={"GRACEFUL_INIT": "off"})
    container.logs.expect("counter started")
    assert [p["argv"] for p in container.processes() if p["ppid"] == 1 and p["pid"] != 1] == []
    orphans = make_and_kill_orphans(container)
    assert poll_until(lambda: set(orphans) <= set(zombies(container)), timeout=10)
    assert set(orphans) <= set(zombies(container))  # still there at a second look


def match(pattern: str, text: str) -> str:
    found = re.search(pattern, text)
    assert found is not None, f"{pattern!r} not in {text!r}"
    return found.group(1)
