"""Kubernetes tools without a cluster: the Flink operator's CRD schema and Debian's ``kubectl``.

- :func:`flink_deployment_schema`: ``flink-kubernetes-operator-api`` (the jar the operator
  itself is built with) from Maven Central, once, into ``~/.cache/meshline/k8s/``; its
  ``META-INF/fabric8/flinkdeployments.flink.apache.org-v1.yml`` is the apiextensions/v1 CRD
  the operator installs, whose ``v1beta1`` OpenAPI schema the API server validates
  ``FlinkDeployment`` objects with.
- :func:`kubectl_binary`: ``apt-get download kubernetes-client`` (bookworm's 1.20) into
  ``~/.cache/meshline/kubectl/apt/``, unpacked with ``dpkg-deb -x`` (as
  ``tests/servers/prometheus.py`` does); ``MESHLINE_KUBECTL`` points at another binary.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import yaml

from tests.harness import one_at_a_time

CACHE = Path(os.environ.get("MESHLINE_CACHE") or Path.home() / ".cache" / "meshline")
OPERATOR_VERSION = "1.10.0"
OPERATOR_JAR = (
    "https://repo1.maven.org/maven2/org/apache/flink/flink-kubernetes-operator-api/"
    f"{OPERATOR_VERSION}/flink-kubernetes-operator-api-{OPERATOR_VERSION}.jar"
)
CRD_ENTRY = "META-INF/fabric8/flinkdeployments.flink.apache.org-v1.yml"
_READY = ".meshline-ready"

__all__ = ["flink_deployment_schema", "kubectl_binary", "openapi_to_jsonschema"]


@one_at_a_time("flink-operator-api")
def _operator_jar() -> Path:
    jar = CACHE / "k8s" / f"flink-kubernetes-operator-api-{OPERATOR_VERSION}.jar"
    if jar.is_file():
        return jar
    jar.parent.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(prefix=".jar-", dir=jar.parent)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(OPERATOR_JAR, timeout=120) as response:
            shutil.copyfileobj(response, out)
        with zipfile.ZipFile(partial) as z:
            z.getinfo(CRD_ENTRY)  # a truncated or wrong download fails here, not in a test
        os.replace(partial, jar)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return jar


def openapi_to_jsonschema(node: Any) -> Any:
    """A Kubernetes structural OpenAPI v3 schema as JSON Schema: ``x-kubernetes-*`` keys dropped,
    ``nullable: true`` turned into ``null`` among the allowed types, ``int-or-string`` honoured."""
    if isinstance(node, list):
        return [openapi_to_jsonschema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key.startswith("x-") or key == "nullable":
            continue
        if key in ("properties", "patternProperties"):
            out[key] = {k: openapi_to_jsonschema(v) for k, v in value.items()}
        else:
            out[key] = openapi_to_jsonschema(value)
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"] if isinstance(out["type"], str) else [*out["type"], "null"]
    return out


def flink_deployment_schema(version: str = "v1beta1") -> dict[str, Any]:
    """The JSON Schema of a ``FlinkDeployment`` of ``version``, from the operator's own CRD."""
    with zipfile.ZipFile(_operator_jar()) as z:
        crd = yaml.safe_load(z.read(CRD_ENTRY))
    assert crd["kind"] == "CustomResourceDefinition" and crd["spec"]["names"]["kind"] == "FlinkDeployment"
    [entry] = [v for v in crd["spec"]["versions"] if v["name"] == version]
    return openapi_to_jsonschema(entry["schema"]["openAPIV3Schema"])


def _run(cmd: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False, timeout=600)


@one_at_a_time("kubectl")
def kubectl_binary() -> Path:
    """Debian's ``kubectl``, downloaded and unpacked the first time."""
    explicit = os.environ.get("MESHLINE_KUBECTL")
    if explicit:
        return Path(explicit)
    home = CACHE / "kubectl"
    root = home / "root"
    binary = root / "usr" / "bin" / "kubectl"
    if (root / _READY).exists():
        return binary
    apt_dir = home / "apt"
    apt_dir.mkdir(parents=True, exist_ok=True)
    if not list(apt_dir.glob("kubernetes-client_*.deb")):
        known = _run(["apt-cache", "show", "--no-all-versions", "kubernetes-client"]).returncode == 0
        if not known and os.geteuid() == 0:
            _run(["apt-get", "update", "-qq"])
        r = _run(["apt-get", "download", "kubernetes-client"], cwd=apt_dir)
        if r.returncode != 0:
            raise RuntimeError(f"apt-get download kubernetes-client failed: {r.stderr.strip()[-2000:]}")
    deb = sorted(apt_dir.glob("kubernetes-client_*.deb"))[-1]
    staging = Path(tempfile.mkdtemp(prefix="root-", dir=home))
    r = _run(["dpkg-deb", "-x", str(deb), str(staging)])
    if r.returncode != 0 or not (staging / "usr" / "bin" / "kubectl").is_file():
        shutil.rmtree(staging, ignore_errors=True)
        raise RuntimeError(f"dpkg-deb -x {deb.name} failed: {r.stderr.strip()}")
    (staging / _READY).write_text("ok\n")
    if root.exists():
        shutil.rmtree(root)
    staging.rename(root)
    return binary
