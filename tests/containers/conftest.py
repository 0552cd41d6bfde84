"""Fixtures for the container tests: the image, built once per run, and containers
and volumes that are removed when the test ends."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import pytest

from ._podman import IMAGE, STATE_DIR, WEB_IMAGE, Container, build_image, podman, unique


@pytest.fixture(scope="session")
def image() -> str:
    """Dockerfile.example, built on the local base image (layers cached between runs)."""
    build_image(IMAGE, "Dockerfile.example")
    return IMAGE


@pytest.fixture(scope="session")
def web_image() -> str:
    """Dockerfile.web.example, the stateless web example."""
    build_image(WEB_IMAGE, "Dockerfile.web.example")
    return WEB_IMAGE


class Podman:
    def __init__(self, image: str) -> None:
        self.image = image
        self.containers: list[Container] = []
        self.volumes: list[str] = []

    def volume(self) -> str:
        """A new named volume; like in Docker, it starts with the image directory's owner."""
        name = unique("graceful-test-state")
        podman("volume", "create", name)
        self.volumes.append(name)
        return name

    def run(
        self,
        *options: str,
        env: Mapping[str, str] | None = None,
        volume: str | None = None,
        network: str = "none",
        image: str | None = None,
    ) -> Container:
        """``podman run --detach`` of the image (the counter's unless ``image`` says);
        its output is followed from the start.

        No network by default: the tests read the health endpoints from inside the
        container, and a private network namespace cannot clash with anything else
        on the machine.
        """
        name = unique("graceful-test")
        argv = ["run", "--detach", "--name", name, f"--network={network}"]
        for key, value in (env or {}).items():
            argv += ["--env", f"{key}={value}"]
        if volume is not None:
            argv += ["--volume", f"{volume}:{STATE_DIR}"]
        podman(*argv, *options, image or self.image)
        container = Container(name)
        self.containers.append(container)
        return container

    def close(self) -> None:
        for container in self.containers:
            container.remove()
        for volume in self.volumes:
            podman("volume", "rm", "--force", volume, check=False)


@pytest.fixture
def containers(image: str) -> Iterator[Podman]:
    runner = Podman(image)
    yield runner
    runner.close()
