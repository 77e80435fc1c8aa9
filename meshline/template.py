"""Dataflow Flex Templates: ``meshline template FILE -o DIR`` (SPEC §8) and the launcher they run.

:func:`write_flex_template` turns one integration into a directory that
``gcloud builds submit`` and ``gcloud dataflow flex-template build`` take as is:

- ``metadata.json``: one template parameter per entry of ``spec.parameters``
  (label, help text from the description, ``isOptional`` unless required without
  a default, a type and a regex for typed defaults); ``streaming`` and the
  at-least-once mode for integrations with unbounded sources;
- ``Dockerfile``, ``launcher.py`` and ``README.md``: from the static files in the
  repository's ``templates/`` directory (or ``meshline/_flex_template`` in an
  installed package, or ``$MESHLINE_TEMPLATES``), with a few ``{{name}}`` fields;
- ``integration.yaml``: a copy of the integration file;
- ``requirements.txt`` and ``src/``: the pins, and the ``meshline`` package with a
  self-contained ``setup.py`` (:func:`meshline.runners.dataflow.write_worker_package`).

Flex Templates have no secret parameter type: Google's own templates declare
passwords as ``TEXT`` and accept a Secret Manager secret version
(``projects/P/secrets/S/versions/V``) in their place. Meshline does the same: a
``secret: true`` parameter is ``TEXT`` with ``customMetadata.secret = "true"`` and
its default is never written. On Dataflow :func:`launch` requires a secret
version as the value of every secret parameter and does not read it: the
workers do (:mod:`meshline.secrets`), so no value is among the job's
parameters, in its pipeline or in its staged files. For a local runner the
launcher reads it itself.

A template's ``launcher.py`` runs the integration through
:func:`meshline.launch.launch`, the way ``meshline run`` does
(:func:`meshline.run.run_integration`); this module only writes templates.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshline.errors import Location, MeshlineError, Problem, RunnerError, SpecError
from meshline.spec.model import Integration, Parameter
from meshline.spec.resolve import resolve

__all__ = [
    "FlexTemplate",
    "select_integration",
    "template_metadata",
    "templates_dir",
    "write_flex_template",
]

STATIC_FILES = ("Dockerfile", "launcher.py", "README.md")
_ENV_REF = re.compile(r"\$\{\s*env\.([A-Za-z0-9_][A-Za-z0-9_.-]*)\s*\}")
_ACRONYMS = frozenset(
    {"id", "url", "uri", "arn", "api", "sql", "sqs", "s3", "gcs", "http", "https", "tls", "ssl"}
)


@dataclass(frozen=True)
class FlexTemplate:
    """What :func:`write_flex_template` wrote, and the commands that build and run it."""

    integration: str
    out_dir: Path
    image: str
    template_file: str
    files: tuple[Path, ...]
    commands: tuple[str, ...]
    warnings: tuple[str, ...] = field(default=())

    def render(self) -> str:
        """What ``meshline template`` prints: the directory, then the commands."""
        lines = [f"wrote a Flex Template for {self.integration} to {self.out_dir}", ""]
        for command in self.commands:
            lines += [command, ""]
        return "\n".join(lines).rstrip() + "\n"


# --------------------------------------------------------------------------- metadata


def _label(name: str) -> str:
    words = [w for w in name.split("_") if w]
    out = [w.upper() if w.lower() in _ACRONYMS else w for w in words]
    if out and out[0] == words[0]:
        out[0] = out[0][:1].upper() + out[0][1:]
    return " ".join(out) or name


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    text = text[:1].upper() + text[1:]
    return text if not text or text.endswith((".", "!", "?")) else text + "."


def _parameter(p: Parameter, integration: str) -> dict[str, Any]:
    has_default = p.default is not None and "${" not in _text(p.default)
    entry: dict[str, Any] = {
        "name": p.name,
        "label": _label(p.name),
        "helpText": _sentence(p.description or f"Parameter {p.name} of the integration {integration}"),
        "isOptional": not p.required or p.default is not None,
        "paramType": "TEXT",
    }
    if p.secret:
        entry["helpText"] += (
            " Secret: give a Secret Manager secret version, projects/PROJECT/secrets/NAME/versions/VERSION;"
            " the launcher reads the value at launch, so it never shows among the job's parameters."
        )
        entry["customMetadata"] = {"secret": "true"}
        return entry
    if isinstance(p.default, bool):
        entry["paramType"] = "BOOLEAN"
        entry["regexes"] = ["^(true|false)$"]
    elif isinstance(p.default, int):
        entry["paramType"] = "NUMBER"
        entry["regexes"] = ["^-?[0-9]+$"]
    elif isinstance(p.default, float):
        entry["paramType"] = "NUMBER"
        entry["regexes"] = ["^-?[0-9]+([.][0-9]+)?([eE][-+]?[0-9]+)?$"]
    if has_default:
        entry["defaultValue"] = _text(p.default)
        entry["helpText"] += f" Default: {_text(p.default)}."
    return entry


def template_metadata(integration: Integration) -> dict[str, Any]:
    """The Flex Template metadata (``metadata.json``) of an integration, as a JSON-ready dict."""
    metadata: dict[str, Any] = {
        "name": integration.name,
        "description": _sentence(integration.description or f"The Meshline integration {integration.name}"),
        "parameters": [_parameter(p, integration.name) for p in integration.parameters],
    }
    if resolve(integration).unbounded:
        # Meshline guarantees at least once (SPEC §5) and writes idempotently where it can.
        metadata.update(
            streaming=True,
            supportsAtLeastOnce=True,
            supportsExactlyOnce=True,
            defaultStreamingMode="AT_LEAST_ONCE",
        )
    return metadata


def _beam_option_names() -> set[str]:
    from apache_beam.options.pipeline_options import PipelineOptions

    return set(PipelineOptions([]).get_all_options(drop_default=False, retain_unknown_options=False))


def _check_names(integration: Integration) -> None:
    taken = _beam_option_names()
    problems = [
        Problem(
            Location(integration.file),
            f"parameter {p.name!r} has the name of the Beam pipeline option --{p.name}: "
            "rename it to use the integration as a Flex Template",
        )
        for p in integration.parameters
        if p.name in taken
    ]
    if problems:
        raise SpecError(problems)


# --------------------------------------------------------------------------- files


def templates_dir() -> Path:
    """Where the static Flex Template files are: ``$MESHLINE_TEMPLATES``, the repository, or the package."""
    import meshline

    package = Path(meshline.__file__).resolve().parent
    candidates = [package.parent / "templates", package / "_flex_template"]
    env = os.environ.get("MESHLINE_TEMPLATES")
    if env:
        candidates.insert(0, Path(env))
    for candidate in candidates:
        if all((candidate / name).is_file() for name in STATIC_FILES):
            return candidate
    looked = ", ".join(str(c) for c in candidates)
    raise MeshlineError(f"the Flex Template files ({', '.join(STATIC_FILES)}) are not in any of: {looked}")


def _check_secrets(integration: Integration) -> None:
    """A Flex Template carries the file as it is and runs on Dataflow: no secret may be written in it."""
    from meshline.runners.dataflow import check_secrets

    try:
        check_secrets(integration, flag="--{name}=")
    except RunnerError as e:
        raise SpecError(
            [Problem(Location(integration.file), f"a Flex Template carries the file as it is: {e}")]
        ) from None


def _render(text: str, values: Mapping[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    return text


def select_integration(integrations: Sequence[Integration], name: str | None, file: str) -> Integration:
    """The integration named ``name`` of a file, or its only one (a Flex Template or a
    deployment runs one)."""
    names = [i.name for i in integrations]
    if name is not None:
        for integration in integrations:
            if integration.name == name:
                return integration
        raise SpecError(
            [Problem(Location(file), f"no integration named {name!r} (found: {', '.join(names)})")]
        )
    if len(integrations) != 1:
        raise SpecError(
            [
                Problem(
                    Location(file),
                    f"the file has {len(names)} integrations ({', '.join(names)}): "
                    "a template or a deployment runs one: choose it with --name",
                )
            ]
        )
    return integrations[0]


def _parameters_doc(metadata: Mapping[str, Any]) -> str:
    params = metadata["parameters"]
    if not params:
        return "The integration declares no parameters."
    rows = ["| name | required | description |", "|---|---|---|"]
    for p in params:
        required = "no" if p.get("isOptional") else "yes"
        help_text = p["helpText"].replace("|", "\\|")
        rows.append(f"| `{p['name']}` | {required} | {help_text} |")
    return "\n".join(rows)


def _placeholder(p: Parameter) -> str:
    if p.secret:
        return f"projects/PROJECT/secrets/{p.name}/versions/latest"
    return p.name.upper()


def _commands(integration: Integration, out_dir: Path, image: str, template_file: str) -> tuple[str, ...]:
    name = integration.name
    build_image = f"gcloud builds submit {out_dir} \\\n    --tag {image} \\\n    --project PROJECT"
    build_template = (
        f"gcloud dataflow flex-template build {template_file} \\\n"
        f"    --image {image} \\\n"
        "    --sdk-language PYTHON \\\n"
        f"    --metadata-file {out_dir / 'metadata.json'} \\\n"
        "    --project PROJECT"
    )
    run = [
        f'gcloud dataflow flex-template run "{name}-$(date +%Y%m%d-%H%M%S)"',
        f"--template-file-gcs-location {template_file}",
        "--project PROJECT",
        "--region REGION",
        "--temp-location gs://BUCKET/tmp",
        "--staging-location gs://BUCKET/staging",
        *(f"--parameters {p.name}={_placeholder(p)}" for p in integration.parameters),
        f"--parameters sdk_container_image={image}",
    ]
    return build_image, build_template, " \\\n    ".join(run)


def write_flex_template(
    integration_file: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    image: str | None = None,
    name: str | None = None,
) -> FlexTemplate:
    """Write a Dataflow Flex Template for the integration in ``integration_file`` into ``out_dir``.

    ``image`` is the container image to build (default: an Artifact Registry path
    with PROJECT, REGION and REPOSITORY placeholders); ``name`` picks one
    integration of a file that has several. Raises :class:`SpecError` for a file
    that does not load, or a parameter named like a Beam pipeline option.
    """
    from meshline.runners.dataflow import beam_version, runtime_pins, write_worker_package
    from meshline.spec import load_file

    source = Path(integration_file)
    text = source.read_text(encoding="utf-8", errors="replace") if source.is_file() else ""
    env_names = sorted(set(_ENV_REF.findall(text)))
    result = load_file(source, params={}, env={}, strict=False)
    integration = select_integration(result.integrations, name, str(source))
    _check_names(integration)
    # again with stand-ins for ${env.…}, so that one in a secret field is seen as a secret from there
    with_env = load_file(source, params={}, env=dict.fromkeys(env_names, "ENV-STAND-IN"), strict=False)
    _check_secrets(select_integration(with_env.integrations, integration.name, str(source)))
    static = templates_dir()

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    image = image or f"REGION-docker.pkg.dev/PROJECT/REPOSITORY/meshline-{integration.name}:latest"
    template_file = f"gs://BUCKET/templates/{integration.name}.json"
    metadata = template_metadata(integration)
    commands = _commands(integration, out, image, template_file)
    local = " ".join(f"--{p.name}={p.name.upper()}" for p in integration.parameters)
    values = {
        "name": integration.name,
        "description": metadata["description"],
        "beam_version": beam_version(),
        "image": image,
        "source_file": source.name,
        "parameters": _parameters_doc(metadata),
        "commands": "\n\n".join(commands),
        "local_params": local,
    }

    written: list[Path] = []

    def write(rel: str, text: str) -> None:
        path = out / rel
        path.write_text(text, encoding="utf-8")
        written.append(path)

    write("metadata.json", json.dumps(metadata, indent=2, ensure_ascii=False) + "\n")
    for rel in STATIC_FILES:
        write(rel, _render((static / rel).read_text(encoding="utf-8"), values))
    shutil.copyfile(source, out / "integration.yaml")
    written.append(out / "integration.yaml")
    pins = [*runtime_pins(), f"apache-beam[gcp]=={beam_version()}"]
    write("requirements.txt", "\n".join(dict.fromkeys(pins)) + "\n")
    src = write_worker_package(out / "src")
    written.append(src / "setup.py")

    warnings = []
    if env_names:
        warnings.append(
            f"{source}: uses ${{env.…}} ({', '.join(env_names)}): the launcher container does not have "
            "these variables; set them with ENV in the Dockerfile or make them parameters"
        )
    return FlexTemplate(
        integration=integration.name,
        out_dir=out,
        image=image,
        template_file=template_file,
        files=tuple(written),
        commands=commands,
        warnings=tuple(warnings),
    )
