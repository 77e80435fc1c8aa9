"""Runners (SPEC §9): ``direct`` now; ``prism``, ``flink`` and ``dataflow`` build on this.

``direct`` is Beam's in-process ``FnApiRunner``, named explicitly: Beam's
``DirectRunner`` first tries to download Prism at run time and, offline, loses
seconds before falling back.
"""

from __future__ import annotations

from typing import Any

from meshline.errors import RunnerError

__all__ = ["RUNNERS", "in_process_runner", "make_runner"]

RUNNERS = ("direct", "prism", "flink", "dataflow")


def in_process_runner() -> Any:
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    return FnApiRunner()


def make_runner(name: str) -> Any:
    """The Beam runner object for a ``--runner`` value."""
    if name == "direct":
        return in_process_runner()
    if name in RUNNERS:
        raise RunnerError(
            f"runner {name!r} is not available in this version of Meshline (use --runner direct)"
        )
    raise RunnerError(f"unknown runner {name!r} (expected one of: {', '.join(RUNNERS)})")
