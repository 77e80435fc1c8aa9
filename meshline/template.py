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

:func:`launch` is what ``launcher.py`` calls: it takes ``--NAME=VALUE`` for each
declared parameter, hands every other argument to Beam, builds the pipeline with
:func:`meshline.compiler.build_pipeline` and runs it on the runner ``--runner``
names (``DataflowRunner`` when absent, as under Dataflow's launcher; ``direct``,
``prism``… for local runs). On Dataflow it returns once the job is submitted, as
Flex Templates require; elsewhere it waits for the run and prints the summary.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshline.errors import Location, MeshlineError, Problem, RunnerError, SpecError
from meshline.registry import is_unbounded

__all__ = [
    "FlexTemplate",
    "launch",
    "split_args",
    "template_metadata",
    "templates_dir",
    "write_flex_template",
]

STATIC_FILES = ("Dockerfile", "launcher.py", "README.md")
_PARAM_HINT = re.compile(r"--param ([A-Za-z_][A-Za-z0-9_]*)=VALUE")
_ENV_REF = re.compile(r"\$\{\s*env\.([A-Za-z0-9_][A-Za-z0-9_.-]*)\s*\}")
_ACRONYMS = frozenset(
    {"id", "url", "uri", "arn", "api", "sql", "sqs", "s3", "gcs", "http", "https", "tls", "ssl"}
)
_RUNNER_NAMES = {
    "dataflow": "dataflow",
    "dataflowrunner": "dataflow",
    "direct": "direct",
    "directrunner": "direct",
    "fnapirunner": "direct",
    "prism": "prism",
    "prismrunner": "prism",
    "flink": "flink",
    "flinkrunner": "flink",
}


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


def _parameter(p: Any, integration: str) -> dict[str, Any]:
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


def template_metadata(integration: Any) -> dict[str, Any]:
    """The Flex Template metadata (``metadata.json``) of an integration, as a JSON-ready dict."""
    metadata: dict[str, Any] = {
        "name": integration.name,
        "description": _sentence(integration.description or f"The Meshline integration {integration.name}"),
        "parameters": [_parameter(p, integration.name) for p in integration.parameters],
    }
    if is_unbounded(integration):
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


def _check_names(integration: Any) -> None:
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


def _check_secrets(integration: Any) -> None:
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


def _select(integrations: Sequence[Any], name: str | None, file: str) -> Any:
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
                    "a Flex Template runs one, name it",
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


def _placeholder(p: Any) -> str:
    if p.secret:
        return f"projects/PROJECT/secrets/{p.name}/versions/latest"
    return p.name.upper()


def _commands(integration: Any, out_dir: Path, image: str, template_file: str) -> tuple[str, ...]:
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
    integration = _select(result.integrations, name, str(source))
    _check_names(integration)
    # again with stand-ins for ${env.…}, so that one in a secret field is seen as a secret from there
    with_env = load_file(source, params={}, env=dict.fromkeys(env_names, "ENV-STAND-IN"), strict=False)
    _check_secrets(_select(with_env.integrations, integration.name, str(source)))
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


# --------------------------------------------------------------------------- launcher


def split_args(argv: Sequence[str], names: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """``--NAME=VALUE`` / ``--NAME VALUE`` for the declared ``names``; every other argument is Beam's."""
    wanted = set(names)
    params: dict[str, str] = {}
    beam: list[str] = []
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        key, sep, value = arg[2:].partition("=") if arg.startswith("--") else ("", "", "")
        if key in wanted:
            if not sep:
                if i + 1 >= len(args):
                    raise RunnerError(f"--{key} needs a value")
                value = args[i + 1]
                i += 1
            params[key] = value
        else:
            beam.append(arg)
        i += 1
    return params, beam


def _pop_runner(beam_args: list[str]) -> tuple[str, list[str]]:
    runner: str | None = None
    rest: list[str] = []
    i = 0
    while i < len(beam_args):
        arg = beam_args[i]
        if arg == "--runner" and i + 1 < len(beam_args):
            runner = beam_args[i + 1]
            i += 2
            continue
        if arg.startswith("--runner="):
            runner = arg.partition("=")[2]
        else:
            rest.append(arg)
        i += 1
    if runner is None:
        return "dataflow", rest
    short = runner.rsplit(".", 1)[-1].lower()
    if short not in _RUNNER_NAMES:
        known = ", ".join(sorted({v for v in _RUNNER_NAMES.values()}))
        raise RunnerError(f"--runner={runner}: unknown runner (expected one of: {known})")
    return _RUNNER_NAMES[short], rest


def _has_option(beam_args: Sequence[str], name: str) -> bool:
    flag = f"--{name}"
    return any(a == flag or a.startswith(flag + "=") for a in beam_args)


def _drop_launcher_setup_file(beam_args: list[str]) -> list[str]:
    """Without the setup file the Flex launcher adds when workers run this image (it has meshline)."""
    env_setup = os.environ.get("FLEX_TEMPLATE_PYTHON_SETUP_FILE")
    if not env_setup or not _has_option(beam_args, "sdk_container_image"):
        return beam_args
    out: list[str] = []
    skip = False
    for i, arg in enumerate(beam_args):
        if skip:
            skip = False
            continue
        if arg == f"--setup_file={env_setup}":
            continue
        if arg == "--setup_file" and i + 1 < len(beam_args) and beam_args[i + 1] == env_setup:
            skip = True
            continue
        out.append(arg)
    return out


def _configure_logging(runner_name: str) -> None:
    """INFO on Dataflow's launcher (its log is the only trace of the launch); quiet Beam locally."""
    logging.basicConfig(
        level=logging.INFO if runner_name == "dataflow" else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if runner_name != "dataflow":
        logging.getLogger("apache_beam").setLevel(logging.ERROR)


def launch(argv: Sequence[str], integration_file: str | os.PathLike[str], *, name: str | None = None) -> int:
    """Build the integration's pipeline from launcher arguments and run it; the exit status."""
    try:
        return _launch(list(argv), Path(integration_file), name)
    except MeshlineError as e:
        if os.environ.get("MESHLINE_DEBUG"):
            raise
        # the loader's hints name the CLI's --param NAME=VALUE; here a parameter is --NAME=VALUE
        print(_PARAM_HINT.sub(r"--\1=VALUE", str(e)), file=sys.stderr)
        return 1


def _launch(argv: list[str], path: Path, name: str | None) -> int:
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from meshline.compiler import build_pipeline
    from meshline.compiler.summary import collect_counters, render_summary
    from meshline.runners import RunnerSettings, make_runner
    from meshline.runners.dataflow import check_secrets, dataflow_runner
    from meshline.secrets import read_secret_manager
    from meshline.spec import load_file

    declared = _select(load_file(path, params={}, env={}, strict=False).integrations, name, str(path))
    params, beam_args = split_args(argv, [p.name for p in declared.parameters])
    runner_name, beam_args = _pop_runner(beam_args)
    _configure_logging(runner_name)
    # on Dataflow the workers read Secret Manager (meshline.secrets); a local run reads it here
    reader = None if runner_name == "dataflow" else (lambda n: read_secret_manager(n, "a secret parameter"))
    result = load_file(path, params=params, env=os.environ, strict=True, secret_manager=reader)
    for warning in result.warnings:
        print(str(warning), file=sys.stderr)
    integration = _select(result.integrations, declared.name, str(path))
    if runner_name == "dataflow":
        check_secrets(integration, flag="--{name}=")

    if runner_name == "dataflow":
        beam_args = _drop_launcher_setup_file(beam_args)
    settings = RunnerSettings(name=runner_name, streaming=is_unbounded(integration), beam_args=beam_args)
    if runner_name == "dataflow":
        runner, runner_args = dataflow_runner(settings, require_options=False)
    else:
        runner, runner_args = make_runner(settings)
    defaults = [] if _has_option(beam_args, "job_name") else [f"--job_name={integration.name}"]
    options = PipelineOptions([*defaults, *runner_args, *beam_args])
    pipeline = beam.Pipeline(runner=runner, options=options)
    build_pipeline(integration, pipeline, options={"runner": runner_name})

    started = time.monotonic()
    print(f"launching {integration.name} on {runner_name} ...", file=sys.stderr)
    try:
        run = pipeline.run()
        if runner_name == "dataflow":  # Flex Templates must return once the job is submitted
            print(f"{integration.name}: submitted to Dataflow", file=sys.stderr)
            return 0
        run.wait_until_finish()
    except MeshlineError:
        raise
    except Exception as e:
        if os.environ.get("MESHLINE_DEBUG"):
            raise
        message = integration.redactor.redact(f"{type(e).__name__}: {e}".splitlines()[0])
        print(f"{integration.name}: run failed: {message}", file=sys.stderr)
        return 1
    print(render_summary(integration, collect_counters(run)), file=sys.stderr)
    print(f"{integration.name}: done in {time.monotonic() - started:.1f}s", file=sys.stderr)
    return 0
