"""``meshline run FILE --runner dataflow --update [--previous OLD]``: replace a running Dataflow job.

Dataflow's update (Beam's ``--update``) starts the new pipeline in place of the running
job of the same ``--job_name`` and carries its state over, matching the two jobs' steps by
transform name. Meshline's names are stable (:mod:`meshline.labels`), so an edit that keeps
the names of sources and targets needs nothing more; a renamed source or target needs
``--transform_name_mapping``, which ``--previous OLD`` (the file the running job was started
from) derives: every full name under ``Source[old]`` (``Route``, ``DecodeFailures``; for a
target ``Merge``, ``DeliveryFailures``) mapped to its new one. A mapping the user gives
after ``--`` wins.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from meshline.errors import UsageError

__all__ = ["derived_mapping", "update_options"]


def _given(beam_args: list[str], name: str) -> bool:
    return any(a == f"--{name}" or a.startswith(f"--{name}=") for a in beam_args)


def derived_mapping(
    old_file: str, new_file: str, params: dict[str, str], runner: str = "dataflow"
) -> tuple[dict[str, str], list[str]]:
    """``(transform_name_mapping, warnings)`` between two versions of an integration file.

    Integrations are paired by name. Warnings name what an update cannot carry: a removed
    stateful component, a source whose type or identity config changed.
    """
    from meshline.labels import compare, load_for_labels, name_mapping, pipeline_labels, stateful_labels

    old_all = {i.name: i for i in load_for_labels(old_file, params)}
    mapping: dict[str, str] = {}
    warnings: list[str] = []
    for new in load_for_labels(new_file, params):
        old = old_all.get(new.name)
        if old is None:
            warnings.append(f"{new.name}: not in {old_file}: nothing to map (the update needs a running job)")
            continue
        old_labels = pipeline_labels(old, runner)
        compat = compare(old_labels, pipeline_labels(new, runner), old, new)
        mapping.update(name_mapping(compat, old_labels))
        stateful = stateful_labels(old, runner)
        for label in compat.removed:
            if label in stateful:
                warnings.append(
                    f"{new.name}: {label} removed: Dataflow refuses an update that drops its state"
                )
        for label, why in compat.changed.items():
            warnings.append(
                f"{new.name}: {label}: {why}: the state carried over belongs to what it read before"
            )
    return mapping, warnings


def update_options(args: Any) -> list[str]:
    """The Beam options ``--update`` adds to ``meshline run``; usage errors for the wrong runner."""
    if not args.update:
        raise UsageError(
            "--previous goes with --update (meshline run FILE --runner dataflow --update --previous OLD)"
        )
    if args.runner != "dataflow":
        raise UsageError("--update replaces a running Dataflow job: it needs --runner dataflow")
    if args.watch:
        raise UsageError("--watch runs locally; it does not go with --update")
    from meshline.loading import params as parse_params

    beam_args = list(args.beam_args)
    out = [] if _given(beam_args, "update") else ["--update"]
    if args.previous and not _given(beam_args, "transform_name_mapping"):
        mapping, warnings = derived_mapping(args.previous, args.file, parse_params(args.param))
        for line in warnings:
            print(f"warning: {line}", file=sys.stderr)
        if mapping:
            out.append(
                "--transform_name_mapping=" + json.dumps(mapping, sort_keys=True, separators=(",", ":"))
            )
    return out
