"""examples/kubernetes: every overlay renders, validates strictly and follows the stop
rules, the credential rules and the migration rules; each rule is shown to fire on a
broken copy."""

from __future__ import annotations

import base64
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from ._manifests import KUSTOMIZATIONS, Doc, check, render, secret_values

pytestmark = pytest.mark.timeout(120)


def validate(docs: list[Doc], path: Path) -> subprocess.CompletedProcess[str]:
    """``kubernetes-validate --strict``: the API schemas (shipped with the package, no
    cluster), rejecting unknown fields too, so a misspelt key cannot hide."""
    tool = Path(sys.executable).with_name("kubernetes-validate")
    if not tool.exists():
        pytest.fail(f"{tool} not found; pip install -e '.[containers]' (make test-containers does)")
    path.write_text(yaml.safe_dump_all(docs))
    return subprocess.run([str(tool), "--strict", str(path)], capture_output=True, text=True)


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_renders_and_every_object_validates_strictly(kustomization: str, tmp_path: Path) -> None:
    docs = render(kustomization)
    assert {"ConfigMap", "Deployment"} <= {d["kind"] for d in docs}
    result = validate(docs, tmp_path / "rendered.yaml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(" passed for resource ") == len(docs), result.stdout


def test_strict_validation_rejects_a_misspelt_field(tmp_path: Path) -> None:
    docs = render("overlays/staging")
    pod = deployment(docs)["spec"]["template"]["spec"]
    pod["terminationGracePeriodSecond"] = pod.pop("terminationGracePeriodSeconds")
    result = validate(docs, tmp_path / "misspelt.yaml")
    assert result.returncode != 0
    assert "'terminationGracePeriodSecond' was unexpected" in result.stdout


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_follows_the_stop_rules(kustomization: str) -> None:
    assert check(kustomization, render(kustomization)) == []


def test_the_counter_keeps_its_state_on_a_claim_and_the_web_service_has_none() -> None:
    kinds = {name: {d["kind"] for d in render(name)} for name in KUSTOMIZATIONS}
    assert all("PersistentVolumeClaim" in kinds[name] for name in kinds if name != "web")
    assert "PersistentVolumeClaim" not in kinds["web"]


COUNTER = [name for name in KUSTOMIZATIONS if name != "web"]


@pytest.mark.parametrize("kustomization", COUNTER)
def test_the_counter_reads_its_password_from_its_secret_by_key(kustomization: str) -> None:
    docs = render(kustomization)
    secret = next(d for d in docs if d["kind"] == "Secret")
    env = {e["name"]: e for e in container(docs)["env"]}
    assert env["DATABASE_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": secret["metadata"]["name"],  # the generated name, with its hash
        "key": "password",
    }
    assert "DATABASE_PASSWORD" not in config(docs)
    (value,) = secret_values(docs).values()
    assert "placeholder" in value  # the example's file, not a credential


def test_each_environment_has_its_own_password() -> None:
    staging, production = render("overlays/staging"), render("overlays/production")
    assert secret_values(staging) != secret_values(production)


@pytest.mark.parametrize("kustomization", COUNTER)
def test_the_migration_runs_the_apps_image_before_it_with_recreate(kustomization: str) -> None:
    docs = render(kustomization)
    spec = deployment(docs)["spec"]
    (migrate,) = spec["template"]["spec"]["initContainers"]
    assert migrate["image"] == container(docs)["image"]
    assert migrate["command"][-3:] == ["python", "-m", "examples.migrate"]
    assert migrate["volumeMounts"] == container(docs)["volumeMounts"]
    assert spec["strategy"] == {"type": "Recreate"}


def test_the_web_example_has_no_migration_and_no_secret() -> None:
    docs = render("web")
    assert "initContainers" not in deployment(docs)["spec"]["template"]["spec"]
    assert "Secret" not in {d["kind"] for d in docs}


def test_the_web_pods_are_scraped_as_clusters_find_targets(tmp_path: Path) -> None:
    docs = render("web")
    annotations = deployment(docs)["spec"]["template"]["metadata"]["annotations"]
    health = next(p for p in container(docs)["ports"] if p["name"] == "health")
    assert annotations == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(health["containerPort"]),
        "prometheus.io/path": "/metrics",
    }
    assert config(docs)["GRACEFUL_METRICS"] == "on"
    assert config(docs)["GRACEFUL_HEALTH_PORT"] == str(health["containerPort"])
    # The Prometheus Operator's way: a ServiceMonitor on a Service port that reaches it.
    monitored = render("web-monitoring")
    monitor = next(d for d in monitored if d["kind"] == "ServiceMonitor")
    service = next(d for d in monitored if d["kind"] == "Service")
    endpoint = monitor["spec"]["endpoints"][0]
    port = next(p for p in service["spec"]["ports"] if p["name"] == endpoint["port"])
    assert port["targetPort"] == "health" and endpoint["path"] == "/metrics"
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    # Everything but the operator's own kind validates strictly (its schema is the CRD's).
    rest = [d for d in monitored if d["kind"] != "ServiceMonitor"]
    result = validate(rest, tmp_path / "monitoring.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_overlays_differ_in_settings_and_resources() -> None:
    staging, production = render("overlays/staging"), render("overlays/production")
    assert config(staging)["GRACEFUL_GRACE"] != config(production)["GRACEFUL_GRACE"]
    assert config(staging)["GRACEFUL_DRAIN_DELAY"] != config(production)["GRACEFUL_DRAIN_DELAY"]
    assert container(staging)["resources"] != container(production)["resources"]


def deployment(docs: list[Doc]) -> Doc:
    return next(d for d in docs if d["kind"] == "Deployment")


def container(docs: list[Doc]) -> Doc:
    found: Doc = deployment(docs)["spec"]["template"]["spec"]["containers"][0]
    return found


def config(docs: list[Doc]) -> dict[str, str]:
    found: dict[str, str] = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
    return found


def set_config(key: str, value: str) -> Callable[[list[Doc]], None]:
    return lambda docs: config(docs).__setitem__(key, value)


def set_pod(key: str, value: object) -> Callable[[list[Doc]], None]:
    return lambda docs: deployment(docs)["spec"]["template"]["spec"].__setitem__(key, value)


def set_security(key: str, value: object) -> Callable[[list[Doc]], None]:
    return lambda docs: container(docs)["securityContext"].__setitem__(key, value)


def set_spec(key: str, value: object) -> Callable[[list[Doc]], None]:
    return lambda docs: deployment(docs)["spec"].__setitem__(key, value)


def stateless(docs: list[Doc]) -> None:
    """The state on an emptyDir instead of the claim: a stateless service."""
    pod = deployment(docs)["spec"]["template"]["spec"]
    pod["volumes"] = [{"name": "state", "emptyDir": {}}]


def no_grace_period(docs: list[Doc]) -> None:
    deployment(docs)["spec"]["template"]["spec"].pop("terminationGracePeriodSeconds")
    config(docs)["GRACEFUL_GRACE"] = "45"


def no_health_server(docs: list[Doc]) -> None:
    del config(docs)["GRACEFUL_HEALTH_PORT"]


def service_port(target: str) -> Callable[[list[Doc]], None]:
    def change(docs: list[Doc]) -> None:
        next(d for d in docs if d["kind"] == "Service")["spec"]["ports"][0]["targetPort"] = target

    return change


def private_health_server(docs: list[Doc]) -> None:
    """The exec-probes overlay's settings, but with its Service kept."""
    config(docs)["GRACEFUL_HEALTH_HOST"] = "127.0.0.1"
    for kind, command in (("readinessProbe", "ready"), ("livenessProbe", "live")):
        probe = ["python", "-m", "graceful", "probe", command]
        container(docs)[kind] = {"exec": {"command": probe}}


def secret(docs: list[Doc]) -> Doc:
    return next(d for d in docs if d["kind"] == "Secret")


def migration(docs: list[Doc]) -> Doc:
    found: Doc = deployment(docs)["spec"]["template"]["spec"]["initContainers"][0]
    return found


def password(docs: list[Doc]) -> str:
    (value,) = secret_values(docs).values()
    return value


def password_as_literal(docs: list[Doc]) -> None:
    container(docs)["env"] = [{"name": "DATABASE_PASSWORD", "value": password(docs)}]


def password_in_configmap(docs: list[Doc]) -> None:
    """Moved to the ConfigMap, under a name the credential rule would not know."""
    config(docs)["DB_PASS"] = password(docs)


def password_key(key: str) -> Callable[[list[Doc]], None]:
    def change(docs: list[Doc]) -> None:
        container(docs)["env"][0]["valueFrom"]["secretKeyRef"]["key"] = key

    return change


def no_secret(docs: list[Doc]) -> None:
    docs.remove(secret(docs))


def password_with_newline(docs: list[Doc]) -> None:
    """What ``files:`` in a secretGenerator makes of a file an editor ended with a newline."""
    secret(docs)["data"]["password"] = base64.b64encode(password(docs).encode() + b"\n").decode()


def password_in_image(docs: list[Doc]) -> None:
    """The Secret holds a value the image carries (a default baked into the Dockerfile)."""
    secret(docs)["data"]["password"] = base64.b64encode(b"COUNTER_STATE=").decode()


def set_migration(key: str, value: object) -> Callable[[list[Doc]], None]:
    return lambda docs: migration(docs).__setitem__(key, value)


def rolling_migration(docs: list[Doc]) -> None:
    """A stateless service (no claim) with a migration and a rolling update."""
    stateless(docs)
    migration(docs)["volumeMounts"] = []
    deployment(docs)["spec"]["strategy"] = {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }


def probe_port(port: object) -> Callable[[list[Doc]], None]:
    return lambda docs: container(docs)["readinessProbe"]["httpGet"].__setitem__("port", port)


BROKEN: dict[str, tuple[Callable[[list[Doc]], None], str]] = {
    "grace period below GRACEFUL_GRACE": (
        set_pod("terminationGracePeriodSeconds", 5),
        "terminationGracePeriodSeconds 5 < GRACEFUL_GRACE 10",
    ),
    "no grace period: Kubernetes' 30 s": (no_grace_period, "30 < GRACEFUL_GRACE 45"),
    "drain delay over half the grace": (set_config("GRACEFUL_DRAIN_DELAY", "6"), "DRAIN_DELAY 6"),
    "probe on another port": (probe_port(8080), "readinessProbe on port 8080"),
    "health port moved, probes not": (set_config("GRACEFUL_HEALTH_PORT", "9000"), "9000"),
    "no health server": (no_health_server, "not set"),
    "HTTP probe of a private server": (
        set_config("GRACEFUL_HEALTH_HOST", "127.0.0.1"),
        "127.0.0.1",
    ),
    "Service to a port the pod lacks": (
        service_port("metrics"),
        "service counter: no port metrics",
    ),
    "Service to a private health server": (
        private_health_server,
        "service counter: the health server is on 127.0.0.1",
    ),
    "root allowed": (set_pod("securityContext", {"runAsUser": 10001}), "runAsNonRoot"),
    "another uid than the image's": (set_security("runAsUser", 1000), "runAsUser 1000"),
    "writable root": (set_security("readOnlyRootFilesystem", False), "readOnlyRootFilesystem"),
    "privilege escalation": (set_security("allowPrivilegeEscalation", True), "allowPrivilege"),
    "capabilities kept": (set_security("capabilities", {}), "capabilities"),
    "state not on a volume": (
        lambda docs: container(docs).__setitem__("volumeMounts", []),
        "/var/lib/counter is not on a volume",
    ),
    "rolling update of single-writer state": (
        set_spec("strategy", {"type": "RollingUpdate"}),
        "needs strategy Recreate",
    ),
    "two writers of one state": (set_spec("replicas", 2), "needs replicas: 1"),
    "stateless service with Recreate": (stateless, "RollingUpdate with maxUnavailable: 0"),
    "password as a literal value": (
        password_as_literal,
        "counter/counter: DATABASE_PASSWORD is not from a Secret",
    ),
    "password copied into the ConfigMap": (password_in_configmap, "DB_PASS holds the value of"),
    "credential named in the ConfigMap": (
        set_config("API_TOKEN", "x"),
        "API_TOKEN is a credential",
    ),
    "secretKeyRef to a missing key": (password_key("pass"), "which has no key pass"),
    "secretKeyRef to a missing Secret": (no_secret, "which is not in the manifests"),
    "password with a trailing newline": (password_with_newline, "trailing whitespace"),
    "password baked into the image": (password_in_image, "its value is in Dockerfile.example"),
    "migration with another image than the app's": (
        set_migration("image", "graceful-counter:0.0.9"),
        "counter/migrate: image graceful-counter:0.0.9, not the app's",
    ),
    "migration without the app's state": (
        set_migration("volumeMounts", []),
        "counter/migrate: does not mount the app's state at /var/lib/counter",
    ),
    "migration with a writable root": (
        set_migration("securityContext", {"readOnlyRootFilesystem": False}),
        "counter/migrate: readOnlyRootFilesystem is not true",
    ),
    "migration with a rolling update": (rolling_migration, "a migration before start needs"),
}


@pytest.mark.parametrize("case", BROKEN)
def test_rule_fires_on_a_broken_copy(case: str) -> None:
    docs = render("overlays/staging")
    break_it, expected = BROKEN[case]
    break_it(docs)
    found = check("overlays/staging", docs)
    assert any(expected in problem for problem in found), found


def test_stateless_rolling_update_with_max_unavailable_0_passes() -> None:
    docs = render("overlays/staging")
    stateless(docs)
    del deployment(docs)["spec"]["template"]["spec"]["initContainers"]  # no migration either
    deployment(docs)["spec"]["strategy"] = {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }
    assert check("overlays/staging", docs) == []


@pytest.mark.parametrize(
    "strategy",
    [{"type": "Recreate"}, {"type": "RollingUpdate"}, {"rollingUpdate": {"maxUnavailable": 1}}],
)
def test_web_service_needs_a_rolling_update_without_unavailable_pods(strategy: Doc) -> None:
    docs = render("web")
    deployment(docs)["spec"]["strategy"] = strategy
    assert check("web", docs) == [
        "web: a stateless service needs RollingUpdate with maxUnavailable: 0"
    ]


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ({}, "budget web: no selector"),
        ({"matchLabels": {"app.kubernetes.io/name": "other"}}, "budget web: selects no pod"),
    ],
)
def test_web_disruption_budget_must_select_its_pods(selector: Doc, expected: str) -> None:
    docs = render("web")
    next(d for d in docs if d["kind"] == "PodDisruptionBudget")["spec"]["selector"] = selector
    assert any(expected in problem for problem in check("web", docs))
