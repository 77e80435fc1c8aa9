"""Runners (SPEC §9): ``direct``, ``prism``, ``flink``, ``dataflow``.

``direct`` is Beam's ``FnApiRunner``, named explicitly: Beam's ``DirectRunner``
first tries to download Prism at run time and, offline, loses seconds before
falling back. Its one worker runs in-process; ``--direct_num_workers=N`` runs N
worker processes (:mod:`meshline.runners.direct`). Each other runner has its own module that
provisions what it needs (the Prism binary, the Flink job-server jar) and
returns the Beam runner plus the pipeline options it requires.

Nothing a run opens listens beyond 127.0.0.1 unless ``allow_exposed``
(``--allow-exposed-runner``): see :mod:`meshline.runners.loopback`.
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
    # --allow-exposed-runner: run even when a runner server listens beyond 127.0.0.1.
    allow_exposed: bool = False
    # spec.execution (meshline.spec.model.Execution): bundle, checkpoint and fill settings
    execution: Any = None


def in_process_runner() -> Any:
    """Beam's FnApiRunner as Meshline runs it (:mod:`meshline.runners.direct`): one in-process
    worker unless the pipeline options ask for more."""
    from meshline.runners.direct import direct_runner

    runner, _ = direct_runner()
    return runner


def make_runner(settings: RunnerSettings) -> tuple[Any, list[str]]:
    """The Beam runner object for ``settings.name`` and the Beam options it adds."""
    name = settings.name
    if name == "direct":
        from meshline.runners.direct import direct_runner

        return direct_runner(settings.beam_args, allow_exposed=settings.allow_exposed)
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
