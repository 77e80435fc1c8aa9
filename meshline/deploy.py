"""``meshline deploy FILE --to flink-kubernetes -o DIR``: a Flink Kubernetes Operator deployment.

What it writes (:func:`write_flink_kubernetes`):

- ``Dockerfile``: ``flink:1.19-java17`` plus Python 3.11, the pinned Beam SDK and Meshline
  (the package copied into ``src/`` with a self-contained ``setup.py``, as Flex Templates
  carry it), the integration file, and a build stage that runs
  ``meshline run … --runner flink -- --output_executable_path=/opt/meshline/job.jar``:
  Beam's job server then writes the pipeline as a job jar instead of running it;
- ``flinkdeployment.yaml``: a ``FlinkDeployment`` in application mode running that jar,
  ``upgradeMode: savepoint``, checkpoints on, and a TaskManager pod template whose second
  container ``beam-worker-pool`` runs the Python steps (Beam's EXTERNAL environment);
- ``secret.example.yaml``: the Kubernetes Secret the containers read secret parameters
  from (``MESHLINE_PARAM_NAME``, :mod:`meshline.secrets`), with ``CHANGE-ME`` values;
- ``README.md``: build, push, apply and upgrade.

No secret value is written: secret parameters travel by reference, their values (a
``default`` in the file, a ``--param``) are left out, and the copied integration file has
its secret defaults removed. A secret typed into the file itself is refused.

This module imports no Beam: only ``--previous`` (:mod:`meshline.labels`) builds pipelines.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from meshline.deploy_text import DOCKERFILE, README, render
from meshline.errors import Location, Problem, SpecError, UsageError
from meshline.secrets import PARAM_ENV_PREFIX
from meshline.spec.model import Integration

__all__ = ["TARGETS", "DeployOptions", "Deployment", "deploy_command", "write_flink_kubernetes"]

TARGETS = ("flink-kubernetes",)
FLINK_VERSION = "1.19"  # meshline.runners.flink.DEFAULT_FLINK_VERSION (not imported: it loads more)
WORKER_POOL_PORT = 50000
CHECKPOINT_INTERVAL = "10s"
_ENV_REF = re.compile(r"\$\{\s*env\.([A-Za-z0-9_][A-Za-z0-9_.-]*)\s*\}")
_DNS = re.compile(r"[^a-z0-9-]+")
_PRIVATE = re.compile(r"key|password|secret|token|cert", re.IGNORECASE)


@dataclass(frozen=True)
class DeployOptions:
    """The flags of ``meshline deploy``."""

    image: str | None = None
    namespace: str = "default"
    parallelism: int = 1
    cpu: float = 1.0
    memory: str = "2048m"
    state_dir: str | None = None
    service_account: str = "flink"
    name: str | None = None
    params: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Deployment:
    """What was written, and the lines ``meshline deploy`` prints."""

    integration: str
    out_dir: Path
    files: tuple[Path, ...]
    secrets: tuple[str, ...]
    notes: tuple[str, ...] = ()

    def render(self) -> str:
        lines = [f"wrote a Flink Kubernetes deployment of {self.integration} to {self.out_dir}:"]
        lines += [f"  {p.name}" for p in self.files if p.parent == self.out_dir]
        lines.append(f"next: see {self.out_dir / 'README.md'} (docker build, kubectl apply)")
        return "\n".join(lines) + "\n"


def k8s_name(name: str) -> str:
    """A Kubernetes object name (RFC 1123 label) for an integration name."""
    out = _DNS.sub("-", name.lower()).strip("-")[:50].strip("-")
    return out or "meshline"


def _beam_pin(pins: Sequence[str]) -> str:
    """The Beam SDK pin of ``requirements.lock`` (the image must run the Beam this was tested with)."""
    for pin in pins:
        if re.match(r"apache-beam(\[[^\]]*\])?==", pin):
            return pin
    from importlib.metadata import version

    return f"apache-beam[gcp]=={version('apache-beam')}"


def _secret_names(integration: Integration) -> tuple[list[str], list[str]]:
    """``(secret parameters, ${env.X} in secret fields)``: what the containers read from the Secret."""
    params = [p.name for p in integration.parameters if p.secret]
    env = sorted(
        {ref.partition(".")[2] for ref, how in integration.secret_refs.items() if ref.startswith("env.")}
    )
    literal = sorted(ref for ref, how in integration.secret_refs.items() if how == "literal")
    if literal:
        where = ", ".join(ref.partition(".")[2] for ref in literal)
        raise SpecError(
            [
                Problem(
                    Location(integration.file),
                    f"a secret is written in the file ({where}): the image would carry it; make it a "
                    "secret: true parameter (the deployment reads it from a Kubernetes Secret)",
                )
            ]
        )
    return params, [e for e in env if e not in params]


def _env(secret: str, params: Sequence[str], env_names: Sequence[str]) -> list[dict[str, Any]]:
    entries = [
        {
            "name": f"{PARAM_ENV_PREFIX}{p}",
            "valueFrom": {"secretKeyRef": {"name": secret, "key": p}},
        }
        for p in params
    ]
    entries += [{"name": e, "valueFrom": {"secretKeyRef": {"name": secret, "key": e}}} for e in env_names]
    return entries


def flink_deployment(
    integration: Integration, options: DeployOptions, image: str, secret: str, env: list[dict[str, Any]]
) -> dict[str, Any]:
    """The ``FlinkDeployment`` (flink.apache.org/v1beta1) of an integration, as a YAML-ready dict."""
    name = k8s_name(integration.name)
    state = (options.state_dir or f"file:///flink-data/{name}").rstrip("/")
    resource = {"cpu": options.cpu, "memory": options.memory}
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": "meshline"}
    pool: dict[str, Any] = {
        "name": "beam-worker-pool",
        "image": image,
        "command": ["python", "-m", "meshline.runners.worker_pool", f"--service_port={WORKER_POOL_PORT}"],
        "ports": [{"name": "beam-pool", "containerPort": WORKER_POOL_PORT}],
        "resources": {"requests": {"cpu": str(options.cpu), "memory": _k8s_memory(options.memory)}},
    }
    if env:
        pool["env"] = env
    return {
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkDeployment",
        "metadata": {"name": name, "namespace": options.namespace, "labels": labels},
        "spec": {
            "image": image,
            "imagePullPolicy": "IfNotPresent",
            "flinkVersion": "v" + FLINK_VERSION.replace(".", "_"),
            "serviceAccount": options.service_account,
            "flinkConfiguration": {
                "taskmanager.numberOfTaskSlots": "1",
                "execution.checkpointing.interval": CHECKPOINT_INTERVAL,
                "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
                "state.checkpoints.dir": f"{state}/checkpoints",
                "state.savepoints.dir": f"{state}/savepoints",
                "high-availability.type": "kubernetes",
                "high-availability.storageDir": f"{state}/ha",
                "restart-strategy.type": "exponential-delay",
            },
            "podTemplate": {"metadata": {"labels": labels}},
            "jobManager": {"replicas": 1, "resource": resource},
            "taskManager": {
                "resource": resource,
                "podTemplate": {
                    "spec": {
                        "containers": [{"name": "flink-main-container"}, pool],
                    }
                },
            },
            "job": {
                "jarURI": "local:///opt/meshline/job.jar",
                "parallelism": options.parallelism,
                "upgradeMode": "savepoint",
                "state": "running",
            },
        },
    }


def _k8s_memory(flink: str) -> str:
    """Flink's ``2048m`` as Kubernetes' ``2048Mi`` (Flink's units are binary)."""
    m = re.fullmatch(r"\s*(\d+)\s*([kmgt])b?\s*", flink, re.IGNORECASE)
    return f"{m[1]}{m[2].upper()}i" if m else flink


def secret_example(secret: str, namespace: str, keys: Sequence[str]) -> dict[str, Any]:
    """The Secret the containers read, with ``CHANGE-ME`` in place of every value."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": secret, "namespace": namespace},
        "type": "Opaque",
        "stringData": dict.fromkeys(keys, "CHANGE-ME"),
    }


def _sanitized(source: Path, secret_params: Sequence[str]) -> str:
    """The integration file without the defaults of its secret parameters (values stay out of DIR)."""
    text = source.read_text(encoding="utf-8")
    documents = list(yaml.safe_load_all(text))
    changed = False
    for doc in documents:
        spec = doc.get("spec") if isinstance(doc, dict) else None
        for p in spec.get("parameters") or [] if isinstance(spec, dict) else []:
            if isinstance(p, dict) and p.get("name") in secret_params and "default" in p:
                del p["default"]
                p["required"] = True
                changed = True
    if not changed:
        return text
    header = (
        f"# {source.name} as deployed: the defaults of secret parameters are left out; the containers\n"
        "# read them from the Kubernetes Secret (secret.example.yaml).\n"
    )
    return header + yaml.safe_dump_all(documents, sort_keys=False, allow_unicode=True)


def _local_files(integration: Integration) -> list[str]:
    """Relative paths of files the integration reads (python modules, stylesheets…), to copy along."""
    root = Path(integration.directory or ".")
    found: set[str] = set()

    def walk(value: Any, key: str) -> None:
        if isinstance(value, Mapping):
            for k, v in value.items():
                walk(v, str(k))
        elif isinstance(value, (list, tuple)):
            for v in value:
                walk(v, key)
        elif isinstance(value, str) and not _PRIVATE.search(key) and value and not os.path.isabs(value):
            rel = os.path.normpath(value)
            if not rel.startswith("..") and (root / rel).is_file():
                found.add(Path(rel).as_posix())

    for decl in (*integration.sources, *integration.transformations, *integration.targets):
        walk(decl.config, "")
    return sorted(found)


def _job_command(params: Mapping[str, str]) -> str:
    words = ["meshline", "run", "/opt/meshline/integration.yaml", "--runner", "flink"]
    for k, v in params.items():
        words += ["--param", f"{k}={v}"]
    words += ["--", "--output_executable_path=/opt/meshline/job.jar", "--parallelism=-1"]
    return " ".join(shlex.quote(w) for w in words)


def write_flink_kubernetes(
    integration_file: str | os.PathLike[str], out_dir: str | os.PathLike[str], options: DeployOptions
) -> Deployment:
    """Write the image and manifests of a Flink Kubernetes Operator deployment (module docstring)."""
    from meshline.runners.dataflow import runtime_pins, write_worker_package
    from meshline.spec import load_file
    from meshline.template import select_integration

    source = Path(integration_file)
    text = source.read_text(encoding="utf-8", errors="replace") if source.is_file() else ""
    env_names = sorted(set(_ENV_REF.findall(text)))
    stand_ins = dict.fromkeys(env_names, "ENV-STAND-IN")
    loaded = load_file(source, params=dict(options.params), env=stand_ins, strict=False)
    integration = select_integration(loaded.integrations, options.name, str(source))
    secret_params, secret_env = _secret_names(integration)
    name = k8s_name(integration.name)
    secret = f"{name}-secrets"
    image = options.image or f"meshline-{name}:latest"
    notes: list[str] = []
    ignored = sorted(p for p in options.params if p in secret_params)
    if ignored:
        notes.append(
            f"--param {', '.join(ignored)}: secret, not written anywhere; put it in the Secret {secret}"
        )
    plain_env = [e for e in env_names if e not in secret_env]
    if plain_env:
        notes.append(
            f"uses ${{env.…}} ({', '.join(plain_env)}): read where the image is built (docker build), "
            "not in the cluster; make them parameters to set them here"
        )
    if options.state_dir is None:
        notes.append(
            "--state-dir not given: checkpoints and savepoints go to file:///flink-data, which a pod loses; "
            "give durable storage (s3://…, gs://…) before relying on upgrades"
        )
    # Non-secret parameters are built into the job jar; secret ones get a stand-in that stays in the
    # build step's memory (the pipeline holds ${params.NAME}; the worker pool reads the Secret).
    build_params = {k: v for k, v in options.params.items() if k not in secret_params}
    for p in integration.parameters:
        if p.secret and (p.required or p.default is not None):
            build_params[p.name] = "BUILD-TIME-STAND-IN"

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def write(rel: str, content: str) -> None:
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        written.append(path)

    pins = runtime_pins()
    beam_pin = _beam_pin(pins)
    files = _local_files(integration)
    for rel in files:
        target = out / "files" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(integration.directory or ".") / rel, target)
        written.append(target)
    copy_files = "COPY files/ /opt/meshline/\n" if files else ""
    write(
        "Dockerfile",
        render(
            DOCKERFILE,
            {
                "name": integration.name,
                "flink_version": FLINK_VERSION,
                "beam_pin": beam_pin,
                "copy_files": copy_files,
                "job_command": _job_command(build_params),
            },
        ),
    )
    env = _env(secret, secret_params, secret_env)
    manifest = flink_deployment(integration, options, image, secret, env)
    write("flinkdeployment.yaml", _yaml(manifest))
    keys = [*secret_params, *secret_env]
    if keys:
        write("secret.example.yaml", _yaml(secret_example(secret, options.namespace, keys)))
    write("integration.yaml", _sanitized(source, secret_params))
    write("requirements.txt", "\n".join(dict.fromkeys([*pins, beam_pin])) + "\n")
    src = write_worker_package(out / "src")
    written.append(src / "setup.py")
    write("README.md", _readme(integration, source, options, image, secret, keys, manifest, beam_pin))
    return Deployment(integration.name, out, tuple(written), tuple(keys), tuple(notes))


class _Plain(yaml.SafeDumper):
    """No ``&id001`` anchors: a manifest is read by people and by ``kubectl``, each value written out."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _yaml(document: Mapping[str, Any]) -> str:
    head = "# written by meshline deploy --to flink-kubernetes\n"
    return head + yaml.dump(dict(document), Dumper=_Plain, sort_keys=False, allow_unicode=True)


def _flags(options: DeployOptions, image: str) -> str:
    parts = [
        f"--image {image}",
        f"--namespace {options.namespace}",
        f"--parallelism {options.parallelism}",
        f"--cpu {options.cpu:g}",
        f"--memory {options.memory}",
    ]
    if options.state_dir:
        parts.append(f"--state-dir {options.state_dir}")
    parts += [f"--param {k}=…" for k in options.params]  # names only: values may be secrets
    return " ".join(parts)


def _readme(
    integration: Integration,
    source: Path,
    options: DeployOptions,
    image: str,
    secret: str,
    keys: Sequence[str],
    manifest: Mapping[str, Any],
    beam_pin: str,
) -> str:
    if keys:
        listed = ", ".join(f"`{k}`" for k in keys)
        secret_step = (
            f"2. The Secret `{secret}` with the secret values ({listed}): copy `secret.example.yaml`,\n"
            "   replace each `CHANGE-ME`, apply it and do not commit the copy (or create it with\n"
            f"   `kubectl -n {options.namespace} create secret generic {secret}`\n"
            "   `--from-literal=KEY=VALUE …`).\n"
            f"   The `beam-worker-pool` containers read each as `{PARAM_ENV_PREFIX}NAME`."
        )
        secret_row = "| `secret.example.yaml` | the Secret the worker pool reads secret parameters from |\n"
    else:
        secret_step = "2. No Secret: the integration declares no secret parameter."
        secret_row = ""
    return render(
        README,
        {
            "name": integration.name,
            "source_file": source.name,
            "flink_version": FLINK_VERSION,
            "beam_pin": beam_pin,
            "checkpoint_interval": CHECKPOINT_INTERVAL,
            "secret_row": secret_row,
            "secret_step": secret_step,
            "flags": _flags(options, image),
            "image": image,
            "namespace": options.namespace,
            "k8s_name": str(manifest["metadata"]["name"]),
            "state_dir": manifest["spec"]["flinkConfiguration"]["state.savepoints.dir"].rsplit("/", 1)[0],
        },
    )


# --------------------------------------------------------------------------- the command


def _previous(old_file: str, new_file: str, params: Mapping[str, str], name: str | None) -> list[str]:
    """``--previous``: one line per savepoint problem (``warning: …``) and per note."""
    from meshline.labels import compare, load_for_labels, pipeline_labels, savepoint_report, stateful_labels
    from meshline.template import select_integration

    old = select_integration(load_for_labels(old_file, params), name, old_file)
    new = select_integration(load_for_labels(new_file, params), name or old.name, new_file)
    old_labels, new_labels = pipeline_labels(old), pipeline_labels(new)
    compat = compare(old_labels, new_labels, old, new)
    warnings, notes = savepoint_report(compat, stateful_labels(old))
    return [f"warning: {w}" for w in warnings] + [f"note: {n}" for n in notes]


def deploy_command(args: Any) -> int:
    """``meshline deploy`` (the CLI's ``cmd_deploy`` calls this)."""
    from meshline.loading import params as parse_params

    if args.to not in TARGETS:
        raise UsageError(f"deploy: unknown --to {args.to!r} (known: {', '.join(TARGETS)})")
    if args.parallelism < 1:
        raise UsageError("deploy: --parallelism must be at least 1")
    params = parse_params(args.param)
    options = DeployOptions(
        image=args.image,
        namespace=args.namespace,
        parallelism=args.parallelism,
        cpu=args.cpu,
        memory=args.memory,
        state_dir=args.state_dir,
        name=args.name,
        params=params,
    )
    result = write_flink_kubernetes(args.file, args.output, options)
    lines = [f"note: {n}" for n in result.notes]
    if args.previous:
        lines += _previous(args.previous, args.file, params, args.name)
    for line in lines:
        print(line, file=sys.stderr)
    print(result.render(), end="")
    return 0
