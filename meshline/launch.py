"""The launcher of a Dataflow Flex Template (:mod:`meshline.template` writes them).

:func:`launch` is what a template's ``launcher.py`` calls: it takes
``--NAME=VALUE`` for each declared parameter, hands every other argument to
Beam, and runs the integration with :func:`meshline.run.run_integration` (as
``meshline run`` does) on the runner ``--runner`` names (``DataflowRunner`` when
absent, as under Dataflow's launcher; ``direct``, ``prism``… for local runs). On
Dataflow it returns once the job is submitted, as Flex Templates require;
elsewhere it waits for the run and prints the summary. On Dataflow a secret
parameter's value must be a Secret Manager secret version, which the workers
read (:mod:`meshline.secrets`); a local run reads it here.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from meshline.errors import MeshlineError, RunnerError
from meshline.run import has_option, run_integration
from meshline.spec.resolve import resolve
from meshline.template import select_integration

__all__ = ["launch", "split_args"]

_PARAM_HINT = re.compile(r"--param ([A-Za-z_][A-Za-z0-9_]*)=VALUE")
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


def _drop_launcher_setup_file(beam_args: list[str]) -> list[str]:
    """Without the setup file the Flex launcher adds when workers run this image (it has meshline)."""
    env_setup = os.environ.get("FLEX_TEMPLATE_PYTHON_SETUP_FILE")
    if not env_setup or not has_option(beam_args, "sdk_container_image"):
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
    from meshline.runners import RunnerSettings
    from meshline.runners.dataflow import check_secrets
    from meshline.secrets import read_secret_manager
    from meshline.spec import load_file

    declared = select_integration(
        load_file(path, params={}, env={}, strict=False).integrations, name, str(path)
    )
    params, beam_args = split_args(argv, [p.name for p in declared.parameters])
    runner_name, beam_args = _pop_runner(beam_args)
    _configure_logging(runner_name)
    # on Dataflow the workers read Secret Manager (meshline.secrets); a local run reads it here
    reader = None if runner_name == "dataflow" else (lambda n: read_secret_manager(n, "a secret parameter"))
    result = load_file(path, params=params, env=os.environ, strict=True, secret_manager=reader)
    for warning in result.warnings:
        print(str(warning), file=sys.stderr)
    resolved = resolve(select_integration(result.integrations, declared.name, str(path)))
    if runner_name == "dataflow":
        check_secrets(resolved.integration, flag="--{name}=")
        beam_args = _drop_launcher_setup_file(beam_args)
    settings = RunnerSettings(name=runner_name, streaming=resolved.unbounded, beam_args=beam_args)
    return int(run_integration(resolved, settings, launcher=True))
