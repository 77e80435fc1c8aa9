"""The components a TriggerMesh/Knative graph walk reaches, converted once each.

:class:`Components` runs a manifest's converter (:mod:`~meshline.importer.tm_sources`,
:mod:`~meshline.importer.tm_components`) the first time a path reaches it, reports
what it could not convert or did not read, and keeps the Meshline step and target
declarations each manifest became (and which manifest owns each one), for
:mod:`meshline.importer.graph` to assemble.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from typing import Any

from meshline.importer.attributes import Known, effect, response_type
from meshline.importer.manifest import Context, Fields, Unsupported, config_problems, unique
from meshline.importer.tm_common import Converter
from meshline.importer.tm_components import STEPS, TARGETS

__all__ = ["Components", "doc_name", "doc_spec", "where_of"]


def doc_name(doc: dict[str, Any]) -> str:
    """A manifest's ``metadata.name`` (empty when it has none)."""
    meta = doc.get("metadata")
    return str((meta if isinstance(meta, dict) else {}).get("name") or "")


def doc_spec(doc: dict[str, Any]) -> dict[str, Any]:
    """A manifest's ``spec`` mapping (empty when it has none)."""
    s = doc.get("spec")
    return s if isinstance(s, dict) else {}


def where_of(f: str, d: dict[str, Any]) -> str:
    """How a line names a manifest: ``FILE: Kind/name``."""
    return f"{f}: {d.get('kind')}/{doc_name(d)}"


class Components:
    """The steps and targets converted so far, by manifest, and the declarations they became.

    ``problem(where, text)`` reports a manifest-level line; ``order`` (where → position)
    places the lines of a ``uri`` target after the manifest that names it.
    """

    def __init__(
        self,
        ctx: Context,
        by_key: dict[tuple[str, str], tuple[str, dict[str, Any]]],
        order: dict[str, int],
        problem: Callable[[str, str], None],
    ):
        self.ctx = ctx
        self.by_key = by_key
        self.order = order
        self.problem = problem
        self.failed: set[tuple[str, str]] = set()
        self.steps: dict[tuple[str, str], list[str]] = {}  # (kind, name) → meshline step names
        self.step_decls: dict[str, dict[str, Any]] = {}
        self.step_by_content: dict[str, str] = {}
        self.effects: dict[str, Callable[[Known], Known]] = {}
        self.owner: dict[tuple[str, str], str] = {}  # ("step"|"target"|"source", name) → where
        self.targets: dict[str, str] = {}  # "Kind/name" or uri → meshline target name
        self.target_decls: dict[str, dict[str, Any]] = {}

    def where_key(self, key: tuple[str, str]) -> str:
        f, d = self.by_key[key]
        return where_of(f, d)

    def convert(
        self, key: tuple[str, str], table: dict[str, Converter], role: str, doc: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]] | None:
        """Run the converter of one manifest; report its unread fields and an invalid config."""
        if doc is None:
            f, doc = self.by_key[key]
            where = where_of(f, doc)
        else:
            where = f"{key[1]}"
        fields = Fields(doc, self.ctx)
        self.ctx.where = where
        try:
            if "spec" in doc and not isinstance(doc["spec"], dict):
                raise Unsupported("spec: expected a mapping")
            type_id, config = table[key[0]](fields)
        except (Unsupported, TypeError, ValueError, AttributeError) as e:
            if not isinstance(e, Unsupported) and os.environ.get("MESHLINE_DEBUG"):
                raise
            self.ctx.forget({where})
            # A shape no converter expected is refused like any other manifest it cannot convert.
            why = (
                str(e)
                if isinstance(e, Unsupported)
                else f"a field has an unexpected shape ({type(e).__name__})"
            )
            self.problem(where, why)
            return None
        fields.get("sink")  # followed by the walk
        invalid = config_problems(role, type_id, config)
        if invalid:
            self.ctx.forget({where})
            self.problem(where, f"the {type_id} {role} refuses its config: {invalid}")
            return None
        for path in fields.unused():
            self.ctx.problem(f"{path}: the {type_id} {role} has no such option")
        return type_id, config

    def step(self, kind: str, name: str) -> list[str] | None:
        key = (kind, name)
        if key in self.steps:
            return self.steps[key]
        if key in self.failed:
            return None
        converted = self.convert(key, STEPS, "transformation")
        if converted is None:
            self.failed.add(key)
            return None
        type_id, config = converted
        where = self.where_key(key)
        names = [self.add_step(name, type_id, config, where, effect(type_id, config))]
        if kind == "XSLTTransformation":
            # TriggerMesh's XSLT transformation appends ".response" to the type; Meshline's keeps it.
            program = '.type += ".response"'
            names.append(
                self.add_step(f"{name}-response-type", "jq", {"program": program}, where, response_type)
            )
        self.steps[key] = names
        return names

    def add_step(
        self,
        name: str,
        type_id: str,
        config: dict[str, Any],
        where: str | None,
        effect: Callable[[Known], Known],
    ) -> str:
        content = json.dumps([type_id, config], sort_keys=True)
        if content in self.step_by_content:
            return self.step_by_content[content]
        step = unique(name, self.step_decls)
        decl: dict[str, Any] = {"name": step, "type": type_id}
        if config:
            decl["config"] = config
        self.step_decls[step] = decl
        self.step_by_content[content] = step
        self.effects[step] = effect
        if where is not None:  # a manifest's step (filters after a step belong to no manifest)
            self.owner[("step", step)] = where
        return step

    def target(self, kind: str, name: str) -> str | None:
        key = (kind, name)
        label = f"{kind}/{name}"
        if label in self.targets:
            return self.targets[label]
        if key in self.failed:
            return None
        converted = self.convert(key, TARGETS, "target")
        if converted is None:
            self.failed.add(key)
            return None
        return self.add_target(label, name, converted, self.where_key(key))

    def add_target(self, label: str, name: str, converted: tuple[str, dict[str, Any]], where: str) -> str:
        type_id, config = converted
        target = unique(name, self.target_decls)
        self.target_decls[target] = {"name": target, "type": type_id, "config": config}
        self.targets[label] = target
        self.owner[("target", target)] = where
        return target

    def uri_target(self, uri: str, where: str) -> str | None:
        if uri in self.targets:
            return self.targets[uri]
        host = re.sub(r"^\w+://", "", uri).split("/", 1)[0].split(":", 1)[0]
        label = host.split(".", 1)[0] or "http"
        if not re.match(r"^https?://", uri):
            self.problem(where, f"sink uri {uri!r}: only http(s) URLs are converted")
            return None
        doc: dict[str, Any] = {
            "kind": "CloudEventsTarget",
            "metadata": {"name": label},
            "spec": {"endpoint": uri},
        }
        owner = f"{where}: uri {uri}"
        self.order[owner] = self.order.get(where, -1)
        converted = self.convert(("CloudEventsTarget", owner), TARGETS, "target", doc)
        if converted is None:
            return None
        return self.add_target(uri, label, converted, owner)
