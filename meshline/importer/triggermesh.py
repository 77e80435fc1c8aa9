"""``meshline import triggermesh``: TriggerMesh / Knative manifests → one integration file.

The manifests describe a graph: sources with a ``sink``, brokers, triggers (broker →
filters → subscriber, with ``delivery``), flow components (transformations and the
routing ``Filter``, with their own ``sink``) and targets. The importer walks every
path from a source to a target and emits one Meshline trigger per path: the filters
met before the first step become the trigger's ``filters``, the transformations its
``steps``, filters met after a step a step that drops what does not match (a ``jq``
``select``, or a ``python`` step for CESQL), the Knative trigger's ``delivery`` its
``delivery``. A Broker's own ``delivery`` is the default of its triggers and its
dead-letter sink the integration's ``deadLetter``.

Replies. A flow component whose ``sink`` is a broker, or that a trigger calls and that
has no sink, sends its output back into that broker, where every trigger whose filters
match takes it. The importer follows each of those triggers with its filters applied
after the steps. It tracks the attribute values it knows (from ``exact`` filters and
from Bumblebee ``add`` operations), drops the triggers those values rule out, and
reports a path that would reach the same trigger again (a loop) instead of following it.

Nothing is dropped silently: a manifest no converted source reaches, a field no
converter reads, a value Meshline cannot take — each is one line in ``problems``
(``not converted: …``), and behaviour differences are ``notes``. Secrets become
``secret: true`` parameters, never literals. Each converted component's config is
checked against its connector's schema, so the output passes ``meshline validate``.
The output carries ``tests: []``: write the cases for your events there.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from meshline.importer.graph import Importer

__all__ = ["ImportResult", "convert", "load_manifests"]


@dataclass
class ImportResult:
    integration: dict[str, Any] | None  # None when nothing could be converted
    problems: list[str] = field(default_factory=list)  # not converted, with why
    notes: list[str] = field(default_factory=list)  # converted, but read this
    error: str | None = None  # why there is no integration

    def to_yaml(self) -> str:
        head = "# Imported from TriggerMesh/Knative manifests by `meshline import triggermesh`.\n"
        return head + yaml.dump(
            self.integration, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100
        )


class _Dumper(yaml.SafeDumper):
    """Writes shared values (one delivery used by several triggers) out in full, without anchors."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _text(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    style = "|" if "\n" in data and not data.endswith(" ") and "\t" not in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _text)


def load_manifests(paths: Iterable[str]) -> list[tuple[str, dict[str, Any]]]:
    """``(file, document)`` for every YAML document in the files (directories: their *.yaml/*.yml)."""
    out: list[tuple[str, dict[str, Any]]] = []
    for p in paths:
        path = Path(p)
        files = sorted([*path.glob("*.yaml"), *path.glob("*.yml")]) if path.is_dir() else [path]
        for f in files:
            with open(f, encoding="utf-8") as fh:
                for doc in yaml.safe_load_all(fh):
                    if isinstance(doc, dict) and doc.get("kind") == "List":
                        out.extend((str(f), d) for d in doc.get("items") or [] if isinstance(d, dict))
                    elif isinstance(doc, dict):
                        out.append((str(f), doc))
    return out


def convert(docs: list[tuple[str, dict[str, Any]]], *, name: str = "imported") -> ImportResult:
    """Convert loaded manifests; the result says what could not be converted and why."""
    out = Importer(docs).run(name)
    return ImportResult(out.integration, out.problems, out.notes, out.error)
