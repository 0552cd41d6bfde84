"""The Kubernetes examples: render them, and the stop rules they must follow.

``problems()`` reads rendered objects the way the kubelet would use them and names
every rule broken, one line each; the tests feed it the real overlays (no problem
expected) and broken copies (each problem expected), so a rule that never fires
cannot pass unnoticed. Besides the stop rules: credentials come from Secrets by key
and show nowhere else, and a migration in an init container runs the app's image on
the app's state, with Recreate.
"""

from __future__ import annotations

import base64
import copy
import functools
import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from ._podman import ROOT

KUBERNETES = ROOT / "examples" / "kubernetes"
# Each kustomization under examples/kubernetes, and the Dockerfile of its image.
KUSTOMIZATIONS = {
    "overlays/staging": "Dockerfile.example",
    "overlays/production": "Dockerfile.example",
    "overlays/exec-probes": "Dockerfile.example",
    "web": "Dockerfile.web.example",
}
PROBES = {"readinessProbe": ("/readyz", "ready"), "livenessProbe": ("/livez", "live")}
# A variable or ConfigMap key by this name holds a credential: it must come from a Secret.
CREDENTIAL = re.compile(r"PASSWORD|SECRET|TOKEN|API_?KEY|CREDENTIAL", re.IGNORECASE)
Doc = dict[str, Any]


def render(kustomization: str) -> list[Doc]:
    """``kubectl kustomize`` of one kustomization (offline: no cluster is needed): a
    copy the caller may change."""
    return copy.deepcopy(_render(kustomization))


@functools.cache
def _render(kustomization: str) -> list[Doc]:
    if shutil.which("kubectl") is None:
        pytest.fail("kubectl not found; install kubectl (1.27 or newer) to render the overlays")
    result = subprocess.run(
        ["kubectl", "kustomize", str(KUBERNETES / kustomization)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, f"kubectl kustomize {kustomization} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def check(kustomization: str, docs: list[Doc]) -> list[str]:
    """``problems()`` of rendered objects against the image they run."""
    dockerfile = (ROOT / KUSTOMIZATIONS[kustomization]).read_text()
    uid = re.search(r"^USER (\d+)", dockerfile, re.MULTILINE)
    assert uid, f"{KUSTOMIZATIONS[kustomization]} has no numeric USER line"
    volume = re.search(r"^VOLUME (\S+)", dockerfile, re.MULTILINE)
    found = problems(docs, int(uid.group(1)), volume.group(1) if volume else None)
    return found + image_problems(docs, KUSTOMIZATIONS[kustomization])


def image_problems(docs: list[Doc], dockerfile: str) -> list[str]:
    """A Secret's value in the Dockerfile or in a file the build context lets in
    (``.dockerignore`` admits files by ``!path``): it would be baked into the image."""
    sources = [ROOT / dockerfile]
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        if line.startswith("!"):
            path = ROOT / line[1:].rstrip("/")
            sources += sorted(path.rglob("*")) if path.is_dir() else [path]
    found: list[str] = []
    for where, value in secret_values(docs).items():
        for source in sources:
            if source.is_file() and value.encode() in source.read_bytes():
                found.append(f"{where}: its value is in {source.relative_to(ROOT)} (the image)")
    return found


def secret_values(docs: list[Doc]) -> dict[str, str]:
    """{"secret NAME/KEY": decoded value} of every Secret in the objects."""
    values: dict[str, str] = {}
    for secret in (d for d in docs if d["kind"] == "Secret"):
        name = secret["metadata"]["name"]
        for key, encoded in secret.get("data", {}).items():
            values[f"secret {name}/{key}"] = base64.b64decode(encoded).decode()
        for key, value in secret.get("stringData", {}).items():
            values[f"secret {name}/{key}"] = value
    return values


def settings(container: Doc, docs: list[Doc]) -> dict[str, str]:
    """The container's environment from its ConfigMaps and its own ``env`` values."""
    configmaps = {
        d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"
    }
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(configmaps.get(source.get("configMapRef", {}).get("name"), {}))
    env.update({e["name"]: e["value"] for e in container.get("env", []) if "value" in e})
    return env


def problems(docs: list[Doc], uid: int, state_dir: str | None) -> list[str]:
    """Every stop rule the objects break; ``uid`` is the image's USER, ``state_dir`` its
    VOLUME (None: a stateless image)."""
    found: list[str] = []
    deployments = [d for d in docs if d["kind"] == "Deployment"]
    if not deployments:
        found.append("no Deployment")
    for deployment in deployments:
        found += deployment_problems(deployment, docs, uid, state_dir)
    for service in (d for d in docs if d["kind"] == "Service"):
        found += service_problems(service, deployments, docs)
    for budget in (d for d in docs if d["kind"] == "PodDisruptionBudget"):
        found += budget_problems(budget, deployments)
    found += secret_problems(docs, deployments)
    return found


def deployment_problems(
    deployment: Doc, docs: list[Doc], uid: int, state_dir: str | None
) -> list[str]:
    name = deployment["metadata"]["name"]
    pod = deployment["spec"]["template"]["spec"]
    found: list[str] = []
    claims = {
        v["name"] for v in pod.get("volumes", []) if "persistentVolumeClaim" in v
    }  # volumes backed by a PersistentVolumeClaim
    for container in pod["containers"]:
        where = f"{name}/{container['name']}"
        env = settings(container, docs)
        grace = float(env.get("GRACEFUL_GRACE", "10"))
        drain = float(env.get("GRACEFUL_DRAIN_DELAY", "0"))
        window = pod.get("terminationGracePeriodSeconds", 30)
        if window < grace:
            found.append(
                f"{where}: terminationGracePeriodSeconds {window} < GRACEFUL_GRACE {grace:g}"
            )
        if drain > grace / 2:
            found.append(f"{where}: GRACEFUL_DRAIN_DELAY {drain:g} > half of GRACEFUL_GRACE")
        found += probe_problems(where, container, env)
        found += security_problems(where, pod, container, uid)
        mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
        if state_dir is not None and state_dir not in mounts:
            found.append(f"{where}: {state_dir} is not on a volume (the root is read-only)")
        stateful = any(m in claims for m in mounts.values())
        found += strategy_problems(name, deployment["spec"], stateful)
    for init in pod.get("initContainers", []):
        where = f"{name}/{init['name']}"
        found += security_problems(where, pod, init, uid)
        found += migration_problems(where, init, pod["containers"][0], claims)
    if pod.get("initContainers"):
        kind = deployment["spec"].get("strategy", {}).get("type", "RollingUpdate")
        if kind != "Recreate":
            found.append(
                f"{name}: a migration before start needs strategy Recreate"
                " (a rolling update keeps old pods running on the migrated state)"
            )
    return found


def migration_problems(where: str, init: Doc, app: Doc, claims: set[str]) -> list[str]:
    """A migration runs the app's own image (the code that knows the new schema) on the
    state the app will read: each claim the app mounts, at the same path."""
    found: list[str] = []
    if init.get("image") != app.get("image"):
        found.append(f"{where}: image {init.get('image')}, not the app's {app.get('image')}")
    mounts = {(m["name"], m["mountPath"]) for m in init.get("volumeMounts", [])}
    for mount in app.get("volumeMounts", []):
        if mount["name"] in claims and (mount["name"], mount["mountPath"]) not in mounts:
            found.append(f"{where}: does not mount the app's state at {mount['mountPath']}")
    return found


def secret_problems(docs: list[Doc], deployments: list[Doc]) -> list[str]:
    """Credentials come from a Secret by key (secretKeyRef) to a Secret that has that
    key, and a Secret's value appears in no ConfigMap and no literal ``env`` value."""
    values = secret_values(docs)
    secrets = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Secret"}
    found: list[str] = []
    for where, value in values.items():
        if value != value.strip():
            found.append(f"{where}: the value has leading or trailing whitespace")
    for deployment in deployments:
        pod = deployment["spec"]["template"]["spec"]
        for container in pod.get("initContainers", []) + pod["containers"]:
            where = f"{deployment['metadata']['name']}/{container['name']}"
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref is not None:
                    found += reference_problems(f"{where}: {env['name']}", ref, secrets)
                elif CREDENTIAL.search(env["name"]):
                    found.append(f"{where}: {env['name']} is not from a Secret (secretKeyRef)")
                for secret, value in values.items():
                    if value and value in str(env.get("value", "")):
                        found.append(f"{where}: {env['name']} holds the value of {secret}")
    for configmap in (d for d in docs if d["kind"] == "ConfigMap"):
        name = configmap["metadata"]["name"]
        for key, text in configmap.get("data", {}).items():
            if CREDENTIAL.search(key):
                found.append(f"configmap {name}: {key} is a credential (it belongs in a Secret)")
            for secret, value in values.items():
                if value and value in text:
                    found.append(f"configmap {name}: {key} holds the value of {secret}")
    return found


def reference_problems(where: str, ref: Doc, secrets: dict[str, Doc]) -> list[str]:
    """A secretKeyRef names a Secret and a key that exist: without ``optional: true``
    a missing one keeps the pod from starting (CreateContainerConfigError)."""
    if ref.get("optional"):
        return []
    secret = secrets.get(ref["name"])
    if secret is None:
        return [f"{where} from Secret {ref['name']}, which is not in the manifests"]
    if ref["key"] not in {**secret.get("data", {}), **secret.get("stringData", {})}:
        return [f"{where} from Secret {ref['name']}, which has no key {ref['key']}"]
    return []


def probe_problems(where: str, container: Doc, env: dict[str, str]) -> list[str]:
    found: list[str] = []
    port = env.get("GRACEFUL_HEALTH_PORT", "")
    if not port.isdigit():
        return [f"{where}: GRACEFUL_HEALTH_PORT not set: no health server for the probes"]
    private = env.get("GRACEFUL_HEALTH_HOST", "0.0.0.0").startswith("127.")
    named = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
    for kind, (path, command) in PROBES.items():
        probe = container.get(kind)
        if probe is None:
            found.append(f"{where}: no {kind}")
        elif "httpGet" in probe:
            target = probe["httpGet"]["port"]
            if named.get(target, target) != int(port):
                found.append(f"{where}: {kind} on port {target}, not GRACEFUL_HEALTH_PORT {port}")
            if probe["httpGet"].get("path") != path:
                found.append(f"{where}: {kind} asks {probe['httpGet'].get('path')}, not {path}")
            if private:
                found.append(f"{where}: {kind} over HTTP, but the health server is on 127.0.0.1")
        elif "exec" in probe:
            argv = probe["exec"]["command"]
            if argv[:5] != ["python", "-m", "graceful", "probe", command]:
                found.append(f"{where}: {kind} runs {argv}, not python -m graceful probe {command}")
            if "--port" in argv and argv[argv.index("--port") + 1] != port:
                found.append(f"{where}: {kind} probes another port than {port}")
        else:
            found.append(f"{where}: {kind} is neither httpGet nor exec")
    return found


def security_problems(where: str, pod: Doc, container: Doc, uid: int) -> list[str]:
    effective = {**pod.get("securityContext", {}), **container.get("securityContext", {})}
    found: list[str] = []
    if effective.get("runAsNonRoot") is not True:
        found.append(f"{where}: runAsNonRoot is not true")
    if effective.get("runAsUser") != uid:
        found.append(f"{where}: runAsUser {effective.get('runAsUser')} is not the image's {uid}")
    if effective.get("readOnlyRootFilesystem") is not True:
        found.append(f"{where}: readOnlyRootFilesystem is not true")
    if effective.get("allowPrivilegeEscalation") is not False:
        found.append(f"{where}: allowPrivilegeEscalation is not false")
    if "ALL" not in effective.get("capabilities", {}).get("drop", []):
        found.append(f"{where}: capabilities are not dropped (drop: [ALL])")
    return found


def strategy_problems(name: str, spec: Doc, stateful: bool) -> list[str]:
    strategy = spec.get("strategy", {})
    kind = strategy.get("type", "RollingUpdate")
    if stateful:
        # One writer: the old pod saves before the new one loads.
        found = []
        if kind != "Recreate":
            found.append(f"{name}: state on a PersistentVolumeClaim needs strategy Recreate")
        if spec.get("replicas", 1) != 1:
            found.append(f"{name}: state on a PersistentVolumeClaim needs replicas: 1")
        return found
    # Stateless: new pods become ready before old ones stop; none is lost meanwhile.
    unavailable = strategy.get("rollingUpdate", {}).get("maxUnavailable", "25%")
    if kind != "RollingUpdate" or unavailable not in (0, "0", "0%"):
        return [f"{name}: a stateless service needs RollingUpdate with maxUnavailable: 0"]
    return []


def service_problems(service: Doc, deployments: list[Doc], docs: list[Doc]) -> list[str]:
    selector = service["spec"].get("selector", {})
    found: list[str] = []
    for deployment in deployments:
        template = deployment["spec"]["template"]
        if not selector.items() <= template["metadata"].get("labels", {}).items():
            continue
        for container in template["spec"]["containers"]:
            env = settings(container, docs)
            named = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
            private = env.get("GRACEFUL_HEALTH_HOST", "").startswith("127.")
            for port in service["spec"]["ports"]:
                raw = port.get("targetPort", port["port"])
                target = named.get(raw, raw)
                if target not in named.values():
                    found.append(f"service {service['metadata']['name']}: no port {target}")
                elif private and str(target) == env.get("GRACEFUL_HEALTH_PORT"):
                    found.append(
                        f"service {service['metadata']['name']}: the health server is on 127.0.0.1"
                    )
    return found


def budget_problems(budget: Doc, deployments: list[Doc]) -> list[str]:
    """A PodDisruptionBudget must select the Deployment's pods, and only them: an empty
    selector covers every pod in the namespace."""
    wanted = budget["spec"].get("selector", {}).get("matchLabels", {})
    name = budget["metadata"]["name"]
    if not wanted:
        return [f"budget {name}: no selector (it would cover every pod in the namespace)"]
    for deployment in deployments:
        if wanted.items() <= deployment["spec"]["template"]["metadata"]["labels"].items():
            return []
    return [f"budget {name}: selects no pod of the Deployment"]
