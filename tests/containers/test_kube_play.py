"""The staging overlay and the web example run for real with `podman kube play`: a pod
from the rendered Deployment, with its ConfigMap, its security context and its claim.

`kube play` is not a cluster. What podman 4.3 does with these manifests:
- honours: the image, ``envFrom`` a ConfigMap in the same file, ``runAsUser``,
  ``readOnlyRootFilesystem``, dropped capabilities, the memory limit, a claim (as a
  named volume that ``kube down`` leaves behind), ports;
- ignores, silently: ``terminationGracePeriodSeconds`` (a pod stop waits 10 s, like
  podman stop), ``runAsNonRoot``, ``namespace``, ``strategy``, Services, and the
  probes' schedule: without systemd it never runs them, and it turns an httpGet probe
  on a named port into ``curl http://localhost:0/...`` (the probes here are read with
  `podman exec` instead); an exec livenessProbe becomes a HEALTHCHECK
  ``CMD-SHELL <words> || exit 1``, which `podman healthcheck run` runs once (an
  argument holding spaces is split into words on the way); ``replicas: 2`` makes two pods that share the claim (the
  single-writer problem the manifests avoid), the second failing on the host port;
- ``imagePullPolicy`` is honoured, and a pull fails offline: the copy played here
  says IfNotPresent. Every containerPort is published on 0.0.0.0 at the same port:
  the copy binds 127.0.0.1 and a free port instead.
- ``kube down`` SIGKILLs the pod without SIGTERM in this version: the test stops the
  pod with `podman pod stop` first, as a user should.

Secrets and init containers, measured with podman 4.3.1 here:
- a ``Secret`` object in the played file is stored as a podman secret (``podman
  secret ls`` shows it; ``kube down`` leaves it behind), but what is stored is the
  object as YAML, and a ``secretKeyRef`` to it then fails the whole play: "cannot set
  env ...: secret ... is not valid JSON". A podman secret whose content is the
  Secret's ``data`` as JSON (``{"password": "<base64>"}``, made with `podman secret
  create`) is read by ``secretKeyRef``: the copy played here drops the Secret object
  and creates that secret instead, under a name of its own;
- init containers run in their order, each to completion, before the app's containers
  are created, and are removed once done (their output with them); one that exits
  non-zero is retried, and after about 20 s the play fails ("init container ...
  exited with code 3") without starting the app. But they take the pod's
  ``restartPolicy``, which a Deployment fixes at Always: each init container is then
  restarted as soon as it exits 0, and after about 20 s the play fails ("failed to
  remove once init container ... as it is running"). The copy played here says
  ``restartPolicy: OnFailure`` (which only a bare Pod may say in Kubernetes).
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from ..conftest import free_port
from ._manifests import Doc, render, secret_values
from ._podman import (
    APP_UID,
    HEALTH_PORT,
    STATE_DIR,
    Container,
    podman,
    unique,
    volume_path,
)

pytestmark = pytest.mark.timeout(300)


class Played:
    """One `kube play` of a rendered kustomization, adjusted to run here: the local
    image, IfNotPresent, one replica (more would clash on the host ports), each port
    on 127.0.0.1 at a free host port, names of its own; each Secret made a podman
    secret, and restartPolicy OnFailure for the init containers (see above)."""

    def __init__(
        self,
        kustomization: str,
        image: str,
        tmp_path: Path,
        change: Callable[[Doc], None] | None = None,
    ) -> None:
        self.image = image
        self.docs = render(kustomization)
        deployment = next(d for d in self.docs if d["kind"] == "Deployment")
        if change is not None:
            change(deployment["spec"]["template"]["spec"]["containers"][0])
        self.name = unique(deployment["metadata"]["name"])
        self.claim = f"{self.name}-state"
        self.host_ports: dict[str, int] = {}
        for doc in self.docs:
            if doc["kind"] == "PersistentVolumeClaim":
                doc["metadata"]["name"] = self.claim
        self.secret_values = secret_values(self.docs)
        self.secrets: dict[str, str] = {}  # the manifest's name: the podman secret's
        for secret in [d for d in self.docs if d["kind"] == "Secret"]:
            self.docs.remove(secret)
            name = self.secrets[secret["metadata"]["name"]] = unique(self.name)
            podman("secret", "create", name, "-", input=json.dumps(secret["data"]))
        self.adjust(deployment)
        self.file = tmp_path / "played.yaml"
        self.file.write_text(yaml.safe_dump_all(self.docs))
        self.pod = f"{self.name}-pod-0"
        podman("kube", "play", str(self.file), timeout=120)
        container = deployment["spec"]["template"]["spec"]["containers"][0]["name"]
        self.container = Container(f"{self.pod}-{container}")

    def adjust(self, deployment: Doc) -> None:
        deployment["metadata"]["name"] = self.name
        deployment["spec"]["replicas"] = 1
        pod = deployment["spec"]["template"]["spec"]
        container = pod["containers"][0]
        for each in pod.get("initContainers", []) + pod["containers"]:
            if each["image"] == container["image"]:
                each["image"] = self.image
            each["imagePullPolicy"] = "IfNotPresent"
            for env in each.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref is not None:
                    ref["name"] = self.secrets[ref["name"]]
        if pod.get("initContainers"):
            pod["restartPolicy"] = "OnFailure"
        for port in container["ports"]:
            self.host_ports[port["name"]] = free_port()
            port.update(hostIP="127.0.0.1", hostPort=self.host_ports[port["name"]])
        for volume in pod.get("volumes", []):
            if "persistentVolumeClaim" in volume:
                volume["persistentVolumeClaim"]["claimName"] = self.claim

    def config(self) -> dict[str, str]:
        data: dict[str, str] = next(d for d in self.docs if d["kind"] == "ConfigMap")["data"]
        return data

    def stop(self) -> tuple[float, int]:
        """`podman pod stop`: SIGTERM, then SIGKILL after podman's 10 s (not the
        manifest's terminationGracePeriodSeconds). (seconds, exit code)"""
        started = time.monotonic()
        podman("pod", "stop", self.pod, timeout=40)
        elapsed = time.monotonic() - started
        return elapsed, int(self.container.inspect("{{.State.ExitCode}}"))

    def down(self) -> None:
        podman("pod", "stop", "--time", "0", self.pod, check=False)
        podman("kube", "down", str(self.file), check=False)
        podman("volume", "rm", "--force", self.claim, check=False)
        for secret in self.secrets.values():
            podman("secret", "rm", secret, check=False)
        self.container.logs.close()


@pytest.fixture
def played(image: str, tmp_path: Path) -> Iterator[Played]:
    run = Played("overlays/staging", image, tmp_path)
    yield run
    run.down()


@pytest.fixture
def played_web(web_image: str, tmp_path: Path) -> Iterator[Played]:
    run = Played("web", web_image, tmp_path)
    yield run
    run.down()


def test_kube_play_of_staging_runs_as_the_manifest_says_and_stops_cleanly(played: Played) -> None:
    container = played.container
    container.logs.expect("counter started")
    # The ConfigMap reached graceful: staging logs at DEBUG (the image says INFO).
    assert played.config()["GRACEFUL_LOG_LEVEL"] == "DEBUG"
    container.logs.expect("graceful DEBUG:")
    env = dict(line.split("=", 1) for line in container.exec("env").stdout.splitlines())
    for key, value in played.config().items():
        assert env[key] == value
    # The security context: the image's uid, a read-only root, no capabilities.
    assert {p["uid"] for p in container.processes()} == {APP_UID}
    touch = container.exec("touch", "/written", check=False)
    assert touch.returncode != 0 and "Read-only file system" in touch.stderr
    status = container.exec("grep", "-E", "^CapEff|^NoNewPrivs", "/proc/self/status").stdout
    assert status.split() == ["CapEff:", "0000000000000000", "NoNewPrivs:", "1"]
    container.logs.expect("jobs_done=2")

    elapsed, code = played.stop()
    assert code == 0, container.logs.text()
    assert elapsed < float(played.config()["GRACEFUL_GRACE"])
    saved = container.logs.expect("saved jobs_done=")
    count = int(saved.split("jobs_done=")[1].split()[0])
    state = volume_path(played.claim) / "counter.json"
    assert json.loads(state.read_text()) == {"jobs_done": count}
    assert STATE_DIR in saved


def test_kube_play_of_staging_serves_the_health_endpoints(played: Played) -> None:
    container = played.container
    container.logs.expect("counter started")
    answers = container.http_get("/readyz", "/livez")
    assert [status for status, _ in answers.values()] == [200, 200], answers
    # From the host, through the port the copy published on 127.0.0.1.
    url = f"http://127.0.0.1:{played.host_ports['health']}/readyz"
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.status == 200
    assert container.exec("python", "-m", "graceful", "probe", "ready").returncode == 0
    assert HEALTH_PORT == int(played.config()["GRACEFUL_HEALTH_PORT"])


def test_kube_play_of_web_serves_through_its_port_and_drains_before_stopping(
    played_web: Played,
) -> None:
    container = played_web.container
    container.wait_for_http(int(played_web.config()["PORT"]))
    # From the host, through the port the copy published on 127.0.0.1.
    url = f"http://127.0.0.1:{played_web.host_ports['http']}/"
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.status == 200
        assert response.read().startswith(b"hello from")
    elapsed, code = played_web.stop()
    assert code == 0, container.logs.text()
    # The ConfigMap's drain delay was served in full, inside podman's 10 s.
    assert elapsed >= float(played_web.config()["GRACEFUL_DRAIN_DELAY"])
    container.logs.expect("hook: the server has drained")


def test_kube_play_of_exec_probes_keeps_the_health_server_private(
    image: str, tmp_path: Path
) -> None:
    played = Played("overlays/exec-probes", image, tmp_path)
    try:
        container = played.container
        container.logs.expect("counter started")
        # kube play turns the manifest's exec livenessProbe into the container's
        # HEALTHCHECK (CMD-SHELL, its words joined); `healthcheck run` runs it once.
        check = json.loads(container.inspect("{{json .Config.Healthcheck.Test}}"))
        assert check[1:6] == ["python", "-m", "graceful", "probe", "live"], check
        assert podman("healthcheck", "run", container.name, check=False).returncode == 0
        assert container.exec("python", "-m", "graceful", "probe", "ready").returncode == 0
        # The server listens on the pod's 127.0.0.1 only: the published port finds nothing.
        url = f"http://127.0.0.1:{played.host_ports['health']}/readyz"
        with pytest.raises(OSError):
            urllib.request.urlopen(url, timeout=5)
        assert played.stop()[1] == 0
    finally:
        played.down()


def test_kube_play_exec_probe_pointed_elsewhere_fails(image: str, tmp_path: Path) -> None:
    """The check above can fail: the same probe at a port nothing listens on."""

    def elsewhere(container: Doc) -> None:
        container["livenessProbe"]["exec"]["command"] += ["--port", "1"]

    played = Played("overlays/exec-probes", image, tmp_path, change=elsewhere)
    try:
        played.container.logs.expect("counter started")
        assert podman("healthcheck", "run", played.container.name, check=False).returncode != 0
    finally:
        played.down()


def test_kube_play_of_staging_migrates_first_and_keeps_the_password_out_of_sight(
    played: Played, image: str
) -> None:
    container = played.container
    container.logs.expect("counter started at jobs_done=0")
    # The init container ran the migration to completion before the app's container
    # started: the schema version it recorded is older than the app's start.
    schema = volume_path(played.claim) / "schema.json"
    assert json.loads(schema.read_text()) == {"version": 1}
    recorded = schema.stat().st_mtime_ns
    assert recorded <= int(container.inspect("{{.State.StartedAt.UnixNano}}"))

    # The password reached the app through secretKeyRef, and nowhere else.
    (password,) = played.secret_values.values()
    env = dict(line.split("=", 1) for line in container.exec("env").stdout.splitlines())
    assert env["DATABASE_PASSWORD"] == password
    assert password not in podman("image", "inspect", image).stdout
    found = container.exec("grep", "-rlF", password, "/app", "/opt/venv", check=False)
    assert found.returncode == 1, found.stdout + found.stderr  # 1: no file holds it

    # Idempotent: run again (as the next start of the pod does), nothing to do.
    migrate = ["python", "-m", "graceful", "--", "python", "-m", "examples.migrate"]
    again = container.exec(*migrate)
    assert "schema version 1, up to date" in again.stdout
    assert password not in again.stdout + again.stderr
    assert schema.stat().st_mtime_ns == recorded
    # State of a newer version (a rollback to this image): refused, left as it was.
    schema.write_text(json.dumps({"version": 2}))
    older = container.exec(*migrate, check=False)
    assert older.returncode == 3, older.stdout + older.stderr
    assert "schema version 2 is newer than this image knows (1)" in older.stderr
    assert json.loads(schema.read_text()) == {"version": 2}

    assert played.stop()[1] == 0
    container.logs.expect("saved jobs_done=")
    assert all(password not in line for line in container.logs.drain())
