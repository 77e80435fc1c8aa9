"""Runners (SPEC §9): ``direct``, ``prism``, ``flink``, ``dataflow``.

``direct`` is Beam's in-process ``FnApiRunner``, named explicitly: Beam's
``DirectRunner`` first tries to download Prism at run time and, offline, loses
seconds before falling back. Each other runner has its own module that
provisions what it needs (the Prism binary, the Flink job-server jar) and
returns the Beam runner plus the pipeline options it requires.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from meshline.errors import RunnerError

__all__ = ["RUNNERS", "RunnerSettings", "in_process_runner", "make_runner"]

RUNNERS = ("direct", "prism", "flink", "dataflow")


@dataclass(frozen=True, kw_only=True)
class RunnerSettings:
    """What the CLI knows about the runner the user asked for."""

    name: str = "direct"
    streaming: bool = False
    prism_location: str | None = None
    flink_master: str = "[local]"
    beam_args: list[str] = field(default_factory=list)


def in_process_runner() -> Any:
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    return FnApiRunner()


def make_runner(settings: RunnerSettings) -> tuple[Any, list[str]]:
    """The Beam runner object for ``settings.name`` and the Beam options it adds."""
    name = settings.name
    if name == "direct":
        return in_process_runner(), []
    if name == "prism":
        from meshline.runners.prism import prism_runner

        return prism_runner(settings)
    if name == "flink":
        from meshline.runners.flink import flink_runner

        return flink_runner(settings)
    if name == "dataflow":
        from meshline.runners.dataflow import dataflow_runner

        return dataflow_runner(settings)
    raise RunnerError(f"unknown runner {name!r} (expected one of: {', '.join(RUNNERS)})")
