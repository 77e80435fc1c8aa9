"""The manifests ``meshline deploy --to flink-kubernetes`` writes, checked by the tools Kubernetes uses.

No cluster here: the ``FlinkDeployment`` is validated against the schema of the CRD that the
Flink Kubernetes Operator 1.10 installs (read from its own ``flink-kubernetes-operator-api``
jar), which is what the API server checks on ``kubectl apply``; a broken copy must fail it.
``kubectl`` offline cannot validate typed objects (``create``/``apply --dry-run=client`` need
the API server's discovery), so it is used for what it does without one: reading every
manifest as a Kubernetes object (``label --local``) and writing the canonical Secret
(``create secret generic --dry-run=client``) that ``secret.example.yaml`` is compared with.
"""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

from meshline.cli import main
from tests.servers.kubernetes import flink_deployment_schema, kubectl_binary
from tests.unit.test_deploy import OLD

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def deployed(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("deploy")
    path = root / "orders.yaml"
    path.write_text(OLD, encoding="utf-8")
    out = root / "out"
    argv = ["deploy", str(path), "--to", "flink-kubernetes", "-o", str(out), "--parallelism", "2"]
    assert main([*argv, "--namespace", "prod", "--state-dir", "s3://bucket/flink"]) == 0
    return out


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    schema = flink_deployment_schema("v1beta1")
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def _errors(validator: jsonschema.Draft7Validator, document: dict) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


def test_flink_deployment_validates_against_the_operator_crd(deployed, validator):
    document = yaml.safe_load((deployed / "flinkdeployment.yaml").read_text())
    assert _errors(validator, document) == []
    # the schema is the real one, not an empty shell: it knows the fields used
    spec = validator.schema["properties"]["spec"]["properties"]
    assert {"job", "podTemplate", "taskManager", "flinkConfiguration", "flinkVersion"} <= set(spec)
    assert "savepoint" in spec["job"]["properties"]["upgradeMode"]["enum"]
    assert "v1_19" in spec["flinkVersion"]["enum"]


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("spec", "job", "parallelism"), "two"),
        (("spec", "job", "upgradeMode"), "rollback"),
        (("spec", "flinkVersion"), "v1_99"),
        (("spec", "taskManager", "resource", "cpu"), "a lot"),
        (("spec", "job", "state"), "paused"),
    ],
    ids=["parallelism-string", "unknown-upgrade-mode", "unknown-flink-version", "cpu-string", "job-state"],
)
def test_a_broken_copy_fails_the_crd_schema(deployed, validator, path, value):
    document = yaml.safe_load((deployed / "flinkdeployment.yaml").read_text())
    broken = copy.deepcopy(document)
    node = broken
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    errors = _errors(validator, broken)
    assert errors and any("/".join(path[1:]) in e for e in errors), errors


def _kubectl(*args: str) -> subprocess.CompletedProcess[str]:
    # an empty kubeconfig: nothing may reach for a cluster
    env = {"KUBECONFIG": "/dev/null", "PATH": "/usr/bin:/bin", "HOME": "/nonexistent"}
    return subprocess.run(
        [str(kubectl_binary()), *args], capture_output=True, text=True, timeout=120, check=False, env=env
    )


@pytest.mark.parametrize("name", ["flinkdeployment.yaml", "secret.example.yaml"])
def test_kubectl_reads_each_manifest_as_a_kubernetes_object(deployed, name):
    r = _kubectl("label", "--local", "-f", str(deployed / name), "meshline.dev/checked=yes", "-o", "json")
    assert r.returncode == 0, r.stderr
    obj = json.loads(r.stdout)
    assert obj["metadata"]["namespace"] == "prod"
    assert obj["metadata"]["labels"]["meshline.dev/checked"] == "yes"


def test_secret_example_is_the_secret_kubectl_would_create(deployed):
    ours = yaml.safe_load((deployed / "secret.example.yaml").read_text())
    keys = sorted(ours["stringData"])
    literals = [f"--from-literal={k}=CHANGE-ME" for k in keys]
    r = _kubectl(
        "create", "secret", "generic", ours["metadata"]["name"], "-n", "prod", *literals,
        "--dry-run=client", "-o", "json",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    canonical = json.loads(r.stdout)
    # kubectl 1.20 leaves the default type (Opaque) out of its dry run
    assert (canonical["apiVersion"], canonical["kind"], canonical.get("type", "Opaque")) == (
        ours["apiVersion"],
        ours["kind"],
        ours["type"],
    )
    assert canonical["metadata"]["name"] == ours["metadata"]["name"] == "orders-flow-secrets"
    assert sorted(canonical["data"]) == keys
    assert set(ours["stringData"].values()) == {"CHANGE-ME"}
    deployment = yaml.safe_load((deployed / "flinkdeployment.yaml").read_text())
    pool = deployment["spec"]["taskManager"]["podTemplate"]["spec"]["containers"][1]
    refs = {
        (e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"]) for e in pool["env"]
    }
    assert refs == {(ours["metadata"]["name"], k) for k in keys}
