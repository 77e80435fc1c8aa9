"""The transform labels of an integration's pipeline, and what an edit keeps of them.

A running job's state is keyed by transform names: Flink restores a savepoint into
the operators whose ids it knows, and Dataflow's ``--update`` matches the old and new
jobs' steps by name. Meshline's labels are stable by design
(:mod:`meshline.compiler.build`): ``Source[NAME]`` holds a source's state (offsets,
splits, acknowledgement ids), ``Route[SOURCE]`` holds the triggers and steps of that
source fused together and no state, ``Target[NAME]`` (with ``Merge[..]``,
``DecodeFailures[..]`` and ``DeliveryFailures[..]``) the delivery. So an edit keeps a
job's state usable as long as every stateful label of the old pipeline is still
there, or is mapped to its new name (Dataflow's ``--transform_name_mapping``).

:func:`pipeline_labels` builds the pipeline without running it (no runner, no
server, no secret read: secret parameters get stand-in values) and lists the
transforms' full names; :func:`compare` says which components were kept, added,
removed or renamed, a rename being a component whose type and config are identical
and only its name changed; :func:`name_mapping` turns the renames into Dataflow's
mapping, every nested name included.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshline.spec.model import ComponentDecl, Integration

__all__ = [
    "IDENTITY_KEYS",
    "Compatibility",
    "compare",
    "load_for_labels",
    "name_mapping",
    "pipeline_labels",
    "savepoint_report",
    "stateful_labels",
]

# Config keys that say *which* stream a source reads: changing one makes its saved
# position (offsets, acknowledgement ids, listing state) meaningless.
IDENTITY_KEYS = frozenset(
    {
        "topics",
        "topic",
        "group_id",
        "bootstrap_servers",
        "queue",
        "queue_url",
        "subscription",
        "project",
        "bucket",
        "prefix",
        "object_name_prefix",
        "path",
        "url",
        "exchange",
        "routing_key",
        "event_hub",
        "consumer_group",
        "namespace",
        "connection_string",
        "mode",
        "format",
        "host",
        "port",
        "event_types",
        "state",
        "state_path",
    }
)
# Labels that Meshline gives per source and per target (build.py); the name is in brackets.
_SOURCE_PREFIXES = ("Source", "Route", "DecodeFailures")
_TARGET_PREFIXES = ("Target", "Merge", "DeliveryFailures")
_LABEL = re.compile(r"^(?P<kind>[A-Za-z]+)\[(?P<name>[^\]]*)\](?P<suffix>#\d+)?$")
_ENV_REF = re.compile(r"\$\{\s*env\.([A-Za-z0-9_][A-Za-z0-9_.-]*)\s*\}")
_STAND_IN = "STAND-IN"
_STATEFUL_URNS = frozenset(
    {
        "beam:transform:group_by_key:v1",
        "beam:transform:combine_per_key:v1",
        "beam:transform:reshuffle:v1",
        "beam:transform:read:v1",
    }
)


def load_for_labels(
    path: str | os.PathLike[str], params: Mapping[str, str] | None = None
) -> list[Integration]:
    """The integrations of a file as far as labels go: missing parameters and variables get stand-ins.

    Labels depend on names and types, not on values, so a file whose secrets and required
    parameters are not given here (``meshline deploy`` runs far from the cluster's Secret)
    still yields its pipeline.
    """
    from meshline.spec import load_file

    source = Path(path)
    given = dict(params or {})
    first = load_file(source, params=given, env={}, strict=False)
    for integration in first.integrations:
        for p in integration.parameters:
            if p.name not in given and (p.required or p.secret) and p.default in (None, ""):
                given[p.name] = _STAND_IN
    text = source.read_text(encoding="utf-8", errors="replace")
    env = {name: _STAND_IN for name in _ENV_REF.findall(text)}
    env.update({k: v for k, v in os.environ.items() if k in env})
    return list(load_file(source, params=given, env=env, strict=False).integrations)


def _pipeline_proto(integration: Integration, runner: str) -> Any:
    import apache_beam as beam

    from meshline.compiler.build import build_pipeline
    from meshline.spec.resolve import resolve

    pipeline = beam.Pipeline()
    core = logging.getLogger("apache_beam.transforms.core")  # "Process method returned None": by design
    level = core.level
    core.setLevel(logging.ERROR)
    try:
        build_pipeline(resolve(integration), pipeline, options={"runner": runner})
    finally:
        core.setLevel(level)
    return pipeline.to_runner_api()


def _named(proto: Any) -> dict[str, Any]:
    """Transform id -> transform, without the pipeline's root (named after Beam's internal ids)."""
    roots = set(proto.root_transform_ids)
    return {tid: t for tid, t in proto.components.transforms.items() if tid not in roots and t.unique_name}


def pipeline_labels(integration: Integration, runner: str = "flink") -> list[str]:
    """Every transform's full name (``Source[orders]/Read/…``), as the runner would see them, sorted.

    ``runner`` matters: on Flink and Dataflow a target fed by several triggers gets one
    ``Merge[..]`` instead of one writer per input.
    """
    proto = _pipeline_proto(integration, runner)
    return sorted(t.unique_name for t in _named(proto).values())


def stateful_labels(integration: Integration, runner: str = "flink") -> set[str]:
    """The top-level labels whose transforms keep state across a restart.

    Every source does (its reader's position, pending acknowledgements); any other
    component does when it groups (a target with ``commit: window``) or has a stateful
    ParDo inside.
    """
    proto = _pipeline_proto(integration, runner)
    transforms = proto.components.transforms
    out: set[str] = set()
    for t in _named(proto).values():
        name = t.unique_name
        if not name or "/" in name:
            continue
        if name.startswith("Source[") or _has_state(t, transforms):
            out.add(name)
    return out


def _has_state(transform: Any, transforms: Any) -> bool:
    from apache_beam.portability.api import beam_runner_api_pb2

    if transform.spec.urn in _STATEFUL_URNS:
        return True
    if transform.spec.urn == "beam:transform:pardo:v1":
        payload = beam_runner_api_pb2.ParDoPayload.FromString(transform.spec.payload)
        if payload.state_specs or payload.timer_family_specs:
            return True
    return any(_has_state(transforms[sub], transforms) for sub in transform.subtransforms)


@dataclass(frozen=True)
class Compatibility:
    """What an edit does to the components of an integration, by their top-level labels."""

    kept: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    renamed: dict[str, str] = field(default_factory=dict)  # old label -> new label
    changed: dict[str, str] = field(default_factory=dict)  # label -> what changed (type, identity keys)


def _top(labels: Iterable[str]) -> list[str]:
    return sorted({label.split("/", 1)[0] for label in labels})


def _kind(label: str) -> str:
    return label.split("[", 1)[0]


def _decl(integration: Integration, label: str) -> ComponentDecl | None:
    m = _LABEL.match(label)
    if not m:
        return None
    kind, name = m["kind"], m["name"]
    if kind == "Source":
        return next((s for s in integration.sources if s.name == name), None)
    if kind == "Target":
        return next((t for t in integration.targets if t.name == name), None)
    return None


def _plain(value: Any) -> Any:
    """A config value as compared: secrets by their template (reference), never their value."""
    from meshline.secrets import is_secret

    if is_secret(value):
        return repr(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _same(a: ComponentDecl, b: ComponentDecl) -> bool:
    return a.type == b.type and _plain(a.config) == _plain(b.config)


def _difference(old: ComponentDecl, new: ComponentDecl) -> str | None:
    """Why a source's saved position no longer applies to it; None when it still does."""
    if old.type != new.type:
        return f"type {old.type} -> {new.type}"
    keys = sorted(
        k
        for k in set(old.config) | set(new.config)
        if k in IDENTITY_KEYS and _plain(old.config.get(k)) != _plain(new.config.get(k))
    )
    return f"config {', '.join(keys)} changed" if keys else None


def compare(
    old_labels: Iterable[str],
    new_labels: Iterable[str],
    old_integration: Integration,
    new_integration: Integration,
) -> Compatibility:
    """Top-level labels kept, added, removed and renamed between two versions of an integration.

    A removed ``Source[a]`` and an added ``Source[b]`` (or ``Target[..]``) with the same type
    and the same config are a rename, and their per-component labels (``Route``,
    ``DecodeFailures``; ``Merge``, ``DeliveryFailures``) are renamed with them. ``changed``
    names kept sources whose type or identity config (:data:`IDENTITY_KEYS`) differ.
    """
    old_top, new_top = _top(old_labels), _top(new_labels)
    old_set, new_set = set(old_top), set(new_top)
    removed = [label for label in old_top if label not in new_set]
    added = [label for label in new_top if label not in old_set]
    renamed: dict[str, str] = {}
    names: dict[tuple[str, str], str] = {}  # (kind, old name) -> new name
    for label in removed:
        old = _decl(old_integration, label)
        if old is None:
            continue
        for candidate in added:
            new = _decl(new_integration, candidate)
            if new is not None and candidate not in renamed.values() and _kind(candidate) == _kind(label):
                if _same(old, new):
                    renamed[label] = candidate
                    names[(_kind(label), old.name)] = new.name
                    break
    for label in removed:  # the labels that go with a renamed component
        m = _LABEL.match(label)
        if not m or label in renamed:
            continue
        kind = (
            "Source" if m["kind"] in _SOURCE_PREFIXES else "Target" if m["kind"] in _TARGET_PREFIXES else ""
        )
        new_name = names.get((kind, m["name"]))
        if new_name is not None:
            candidate = f"{m['kind']}[{new_name}]{m['suffix'] or ''}"
            if candidate in new_set:
                renamed[label] = candidate
    changed: dict[str, str] = {}
    for label in old_top:
        if label in new_set and label.startswith("Source["):
            old, new = _decl(old_integration, label), _decl(new_integration, label)
            why = _difference(old, new) if old and new else None
            if why:
                changed[label] = why
    return Compatibility(
        kept=[label for label in old_top if label in new_set],
        added=[label for label in added if label not in renamed.values()],
        removed=[label for label in removed if label not in renamed],
        renamed=renamed,
        changed=changed,
    )


def name_mapping(compat: Compatibility, old_labels: Iterable[str]) -> dict[str, str]:
    """Dataflow's ``--transform_name_mapping`` for the renames: each composite and every name inside it.

    Dataflow matches the steps of the running job by full transform name; a rename maps
    ``Source[old]`` and each of its nested names (``Source[old]/Read/…``) to the new ones.
    """
    mapping: dict[str, str] = {}
    for label in sorted(old_labels):
        top, sep, rest = label.partition("/")
        if top in compat.renamed:
            mapping[label] = compat.renamed[top] + sep + rest
    return mapping


def savepoint_report(compat: Compatibility, stateful: Iterable[str]) -> tuple[list[str], list[str]]:
    """``(warnings, notes)`` about a savepoint of the old job: one line each.

    A warning is an edit that loses state: a stateful component removed or renamed (a
    savepoint is restored by name, Flink has no rename mapping), or a source whose type or
    identity config changed. Notes say what is kept.
    """
    state = set(stateful)
    warnings: list[str] = []
    for label in compat.removed:
        if label in state:
            warnings.append(f"{label} removed: its state in the savepoint is not restored (it is dropped)")
    for old, new in compat.renamed.items():
        if old in state:
            warnings.append(
                f"{old} renamed to {new}: a savepoint is restored by name, so {new} starts without the "
                f"state of {old} (keep the old name to keep it)"
            )
    for label, why in compat.changed.items():
        warnings.append(f"{label}: {why}: the position saved for it belongs to what it read before")
    kept = [label for label in compat.kept if label in state and label not in compat.changed]
    notes = [f"kept with its state: {', '.join(kept)}"] if kept else []
    if compat.added:
        notes.append(f"added (start empty): {', '.join(compat.added)}")
    return warnings, notes
