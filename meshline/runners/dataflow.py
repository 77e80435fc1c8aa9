"""Google Dataflow: Beam's DataflowRunner, with the checks and the worker package it needs.

``meshline run FILE --runner dataflow -- --project=P --region=R --temp_location=gs://B/tmp``
submits the pipeline from this machine. Project, region and temp location are
Beam options the user gives after ``--``; when one is missing Meshline says so in
one line instead of Beam's traceback from deep inside job submission.

Workers need the ``meshline`` package. Unless the user passes ``--setup_file``,
``--sdk_container_image`` or ``--extra_package(s)``, Meshline stages it with
``--setup_file``: a self-contained copy of the installed package plus a generated
``setup.py`` whose ``install_requires`` are the runtime pins, cached under
``~/.cache/meshline/dataflow/`` (``$MESHLINE_CACHE``). The repository's own
``setup.py`` is not used because it reads ``requirements.lock`` at install time and
a source distribution built from it does not contain that file. The same package
goes into Flex Templates (:mod:`meshline.template`).

Submitting needs ``apache-beam[gcp]`` (Beam's Dataflow client). Everything up to
the submission works offline: ``--dataflow_endpoint=http://localhost:…`` (not a
service endpoint, so Beam skips its GCS checks), local ``--temp_location`` and
``--staging_location``, and ``--template_location=FILE`` write the job request
and the staged files locally instead of calling the service.

Secrets: Dataflow workers cannot read this machine's memory or environment, so a
secret reaches them only as a Google Secret Manager secret version given as the
value of a ``secret: true`` parameter (``--param pw=projects/P/secrets/S/versions/V``).
Meshline never reads it here: the workers read it when they unpickle the
pipeline (their service account needs ``roles/secretmanager.secretAccessor``).
:func:`check_secrets` refuses every other way of giving a secret in one line.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from meshline.errors import RunnerError
from meshline.secrets import SECRET_VERSION

if TYPE_CHECKING:
    from meshline.spec.model import Integration

__all__ = [
    "REQUIRED_OPTIONS",
    "beam_version",
    "check_secrets",
    "dataflow_runner",
    "missing_options",
    "runtime_pins",
    "worker_package",
    "write_worker_package",
]

REQUIRED_OPTIONS = ("project", "region", "temp_location")
_EXAMPLE = (
    "meshline run FILE --runner dataflow -- --project=PROJECT --region=REGION --temp_location=gs://BUCKET/tmp"
)
_SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo")


def beam_version() -> str:
    from apache_beam.version import __version__

    return __version__


def _options(beam_args: Sequence[str]) -> Any:
    from apache_beam.options.pipeline_options import PipelineOptions

    return PipelineOptions(list(beam_args))


def missing_options(beam_args: Sequence[str]) -> list[str]:
    """The options of :data:`REQUIRED_OPTIONS` that ``beam_args`` does not set, as ``--name``."""
    from apache_beam.options.pipeline_options import GoogleCloudOptions

    cloud = _options(beam_args).view_as(GoogleCloudOptions)
    return [f"--{name}" for name in REQUIRED_OPTIONS if not getattr(cloud, name, None)]


def _is_service_endpoint(endpoint: str | None) -> bool:
    """Beam's own rule: an endpoint on localhost is a test double, anything else the real service."""
    return bool(endpoint) and not urlparse(str(endpoint)).netloc.startswith("localhost")


def _check_gcp_extra() -> None:
    try:
        from apache_beam.runners.dataflow.internal import apiclient  # noqa: F401
    except ImportError as e:
        raise RunnerError(
            "the dataflow runner needs Beam's Google Cloud extra: "
            f"pip install 'apache-beam[gcp]=={beam_version()}' ({e})"
        ) from None


def dataflow_runner(settings: Any, *, require_options: bool = True) -> tuple[Any, list[str]]:
    """Beam's ``DataflowRunner`` and the options Meshline adds (``--setup_file``, ``--streaming``).

    ``require_options=False`` (the Flex Template launcher, where Dataflow itself
    passes project, region and locations) skips the check for missing options.
    """
    from apache_beam.options.pipeline_options import GoogleCloudOptions, SetupOptions, WorkerOptions

    beam_args = list(settings.beam_args)
    options = _options(beam_args)
    cloud = options.view_as(GoogleCloudOptions)
    if require_options:
        missing = missing_options(beam_args)
        if missing:
            raise RunnerError(
                f"the dataflow runner needs {', '.join(missing)} (Beam options after --, e.g. {_EXAMPLE})"
            )
        if _is_service_endpoint(cloud.dataflow_endpoint):
            for name in ("temp_location", "staging_location"):
                value = getattr(cloud, name, None)
                if value and not str(value).startswith("gs://"):
                    raise RunnerError(
                        f"--{name}={value}: the dataflow runner needs a Cloud Storage path (gs://BUCKET/PATH)"
                    )
    _check_gcp_extra()
    from apache_beam.runners.dataflow.dataflow_runner import DataflowRunner

    setup = options.view_as(SetupOptions)
    worker = options.view_as(WorkerOptions)
    args: list[str] = []
    if not (
        setup.setup_file
        or setup.extra_packages
        or worker.sdk_container_image
        or worker.worker_harness_container_image
    ):
        args.append(f"--setup_file={worker_package() / 'setup.py'}")
    if settings.streaming:
        args.append("--streaming")
    return DataflowRunner(), args


def check_secrets(integration: Integration, flag: str = "--param {name}=") -> None:
    """Refuse a secret that Dataflow workers could not read: one line naming each, and the fix.

    ``flag`` spells how a parameter is given (``--NAME=`` in a Flex Template launcher).
    """
    problems: list[str] = []
    for ref, how in sorted(integration.secret_refs.items()):
        kind, _, name = ref.partition(".")
        if how == "secretmanager":
            continue
        if kind == "params":
            problems.append(f"parameter {name} is given by value")
        elif kind == "env":
            problems.append(f"${{env.{name}}} is this machine's environment")
        else:
            problems.append(f"{name} is written in the file")
    given = {ref.partition(".")[2] for ref in integration.secret_refs}
    for p in integration.parameters:
        if p.secret and p.name not in given and p.default not in (None, ""):
            if not isinstance(p.default, str) or not SECRET_VERSION.fullmatch(p.default.strip()):
                problems.append(f"parameter {p.name} has a default value")
    if problems:
        example = flag.format(name="NAME") + "projects/PROJECT/secrets/SECRET/versions/VERSION"
        raise RunnerError(
            f"{integration.name}: on Dataflow a secret must be a Secret Manager secret version that the "
            f"workers read ({example}): {'; '.join(problems)}"
        )


# --------------------------------------------------------------------------- the worker package


def _package_root() -> Path:
    import meshline

    return Path(meshline.__file__).resolve().parent


def runtime_pins() -> list[str]:
    """Meshline's runtime pins: the repository's ``requirements.lock``, else the installed metadata."""
    root = _package_root().parent
    lock = root / "requirements.lock"
    if lock.is_file() and (root / "setup.py").is_file():
        lines = (ln.strip() for ln in lock.read_text(encoding="utf-8").splitlines())
        return [ln for ln in lines if ln and not ln.startswith("#")]
    try:
        requires = importlib.metadata.requires("meshline") or []
    except importlib.metadata.PackageNotFoundError:
        requires = []
    return [r for r in requires if "extra" not in r.partition(";")[2]]


def _version() -> str:
    from meshline import __version__

    return str(__version__)


def _package_data(package: Path) -> list[str]:
    """Every non-Python file of the package, relative to it (``py.typed``, data files)."""
    out = []
    for path in sorted(package.rglob("*")):
        if path.is_file() and path.suffix not in (".py", ".pyc", ".pyo") and "__pycache__" not in path.parts:
            out.append(path.relative_to(package).as_posix())
    return out


def _setup_py(pins: list[str], package_data: list[str]) -> str:
    return (
        '"""Meshline for Dataflow workers and Flex Template images (generated by Meshline; do not edit).\n\n'
        "Self-contained: a source distribution built from this directory installs anywhere.\n"
        '"""\n\n'
        "from setuptools import find_packages, setup\n\n"
        "setup(\n"
        '    name="meshline",\n'
        f"    version={json.dumps(_version())},\n"
        '    python_requires=">=3.11",\n'
        '    packages=find_packages(include=["meshline", "meshline.*"]),\n'
        f'    package_data={{"meshline": {json.dumps(package_data)}}},\n'
        f"    install_requires={json.dumps(pins)},\n"
        ")\n"
    )


def write_worker_package(dest: str | os.PathLike[str]) -> Path:
    """Write ``setup.py`` and a copy of the ``meshline`` package into ``dest``; returns ``dest``.

    An existing ``dest/meshline`` is replaced, so no stale module survives.
    """
    target = Path(dest)
    target.mkdir(parents=True, exist_ok=True)
    package = _package_root()
    copy = target / "meshline"
    if copy.exists():
        shutil.rmtree(copy)
    shutil.copytree(package, copy, ignore=_SKIP)
    setup_text = _setup_py(runtime_pins(), _package_data(copy))
    (target / "setup.py").write_text(setup_text, encoding="utf-8")
    (target / "README.md").write_text(
        f"# meshline {_version()}\n\nThe Meshline package as Dataflow workers install it (generated).\n",
        encoding="utf-8",
    )
    return target


def _digest(package: Path, extra: str) -> str:
    h = hashlib.sha256(extra.encode())
    for path in sorted(package.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".pyo"):
            h.update(path.relative_to(package).as_posix().encode() + b"\0")
            h.update(path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def _cache_root() -> Path:
    base = os.environ.get("MESHLINE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "meshline")
    return Path(base) / "dataflow"


def worker_package() -> Path:
    """A directory holding the worker package (``setup.py`` + ``meshline/``), cached by content."""
    package = _package_root()
    pins = runtime_pins()
    key = _digest(package, "\n".join([_version(), *pins]))
    target = _cache_root() / f"meshline-{re.sub(r'[^A-Za-z0-9.]+', '_', _version())}-{key}"
    if (target / "setup.py").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".tmp-", dir=target.parent))
    try:
        write_worker_package(staging)
        try:
            staging.rename(target)
        except OSError:  # another process won the race: use its copy
            if not (target / "setup.py").is_file():
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target
