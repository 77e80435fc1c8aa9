"""``meshline import triggermesh``: TriggerMesh / Knative manifests → one integration file.

The manifests describe a graph: sources with a ``sink``, brokers, triggers
(broker → filters → subscriber, with ``delivery``), flow components
(transformations and ``Filter`` with their own ``sink``) and targets. The
importer walks every path from a source to a target and emits one Meshline
trigger per path: the filters met before the first step become the trigger's
``filters``, the transformations its ``steps``, filters met after a step a
``jq`` step that keeps only matching events (``select``), the Knative
trigger's ``delivery`` (``retry``, ``backoffPolicy``, ``backoffDelay``,
``deadLetterSink``) its ``delivery``. A Broker's own ``delivery`` becomes the
integration's defaults and ``deadLetter``.

A transformation without a sink that a broker trigger calls replies to the
broker (Knative); when its output type is known (a Bumblebee mapping that sets
``type``), the importer follows the broker's triggers that filter on exactly
that type. Everything it cannot convert is reported, one line each, with why.
The output carries ``tests: []``: write the cases for your events there.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from meshline.importer.cel import Unsupported, convert_expression, dialect_to_jq, iso_duration
from meshline.importer.tm_components import SOURCES, STEPS, TARGETS, Context

__all__ = ["ImportResult", "convert", "load_manifests"]

_BROKERS = ("Broker", "RedisBroker", "MemoryBroker")
_IGNORED = ("Secret", "ConfigMap", "Namespace", "ServiceAccount", "Role", "RoleBinding", "ClusterRoleBinding")


@dataclass
class ImportResult:
    integration: dict[str, Any]
    problems: list[str] = field(default_factory=list)  # not converted, with why
    notes: list[str] = field(default_factory=list)  # converted, but read this

    def to_yaml(self) -> str:
        head = "# Imported from TriggerMesh/Knative manifests by `meshline import triggermesh`.\n"
        return head + yaml.safe_dump(self.integration, sort_keys=False, allow_unicode=True, width=100)


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


def _name(doc: dict[str, Any]) -> str:
    return str((doc.get("metadata") or {}).get("name") or "")


def _clean(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "-", name).strip("-.") or "x"


@dataclass
class _Route:
    source: str
    filters: list[dict[str, Any]]
    steps: list[str]
    target: str
    trigger: tuple[str, ...]  # the Knative triggers on the path
    delivery: dict[str, Any] | None


class _Importer:
    def __init__(self, docs: list[tuple[str, dict[str, Any]]]):
        self.docs = docs
        self.by_kind: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
        self.triggers: list[tuple[str, dict[str, Any]]] = []
        self.problems: list[str] = []
        self.ctx = Context()
        self.sources: dict[str, dict[str, Any]] = {}
        self.steps: dict[str, str] = {}  # "Kind/name" → meshline step name
        self.step_decls: list[dict[str, Any]] = []
        self.step_types: dict[str, str | None] = {}  # step name → the event type it sets, if known
        self.targets: dict[str, str] = {}  # "Kind/name" or uri → meshline target name
        self.target_decls: list[dict[str, Any]] = []
        self.broker_delivery: dict[str, dict[str, Any]] = {}
        self.failed: set[str] = set()
        for f, d in docs:
            kind = str(d.get("kind") or "")
            if kind == "Trigger":
                self.triggers.append((f, d))
            self.by_kind[(kind, _name(d))] = (f, d)

    def problem(self, where: str, text: str) -> None:
        line = f"{where}: {text}"
        if line not in self.problems:
            self.problems.append(line)

    # ------------------------------------------------------------------ components

    def _where(self, f: str, d: dict[str, Any]) -> str:
        return f"{f}: {d.get('kind')}/{_name(d)}"

    def step(self, kind: str, name: str) -> str | None:
        key = f"{kind}/{name}"
        if key in self.steps:
            return self.steps[key]
        if key in self.failed:
            return None
        f, d = self.by_kind[(kind, name)]
        self.ctx.where = self._where(f, d)
        try:
            type_id, config = STEPS[kind](d, self.ctx)
        except Unsupported as e:
            self.problem(self.ctx.where, f"not converted: {e}")
            self.failed.add(key)
            return None
        step = self._unique(_clean(name), [s["name"] for s in self.step_decls])
        decl: dict[str, Any] = {"name": step, "type": type_id}
        if config:
            decl["config"] = config
        self.step_decls.append(decl)
        self.steps[key] = step
        self.step_types[step] = _type_set_by(type_id, config)
        return step

    def target(self, kind: str, name: str, doc: dict[str, Any] | None = None, label: str = "") -> str | None:
        key = f"{kind}/{name}"
        if key in self.targets:
            return self.targets[key]
        if key in self.failed:
            return None
        if doc is None:
            f, doc = self.by_kind[(kind, name)]
        else:
            f = "(uri)"
        self.ctx.where = self._where(f, doc)
        try:
            type_id, config = TARGETS[kind](doc, self.ctx)
        except Unsupported as e:
            self.problem(self.ctx.where, f"not converted: {e}")
            self.failed.add(key)
            return None
        target = self._unique(_clean(label or name), [t["name"] for t in self.target_decls])
        self.target_decls.append({"name": target, "type": type_id, "config": config})
        self.targets[key] = target
        return target

    def uri_target(self, uri: str) -> str | None:
        host = re.sub(r"^\w+://", "", uri).split("/", 1)[0].split(":", 1)[0]
        label = host.split(".", 1)[0] or "http"
        doc: dict[str, Any] = {
            "kind": "CloudEventsTarget",
            "metadata": {"name": label},
            "spec": {"endpoint": uri},
        }
        return self.target("CloudEventsTarget", uri, doc, label=label)

    @staticmethod
    def _unique(name: str, taken: list[str]) -> str:
        if name not in taken:
            return name
        n = 2
        while f"{name}-{n}" in taken:
            n += 1
        return f"{name}-{n}"

    # ------------------------------------------------------------------ the graph walk

    def walk(
        self,
        dest: Any,
        filters: list,
        steps: list,
        trig: tuple[str, ...],
        delivery: Any,
        seen: frozenset,
        where: str,
    ) -> list[tuple[list, list, str, tuple[str, ...], Any]]:
        """Routes from ``dest``: ``(filters, steps, target, trigger, delivery)``."""
        if not isinstance(dest, dict):
            self.problem(where, "has no sink: its events go nowhere")
            return []
        if dest.get("uri") and not dest.get("ref"):
            t = self.uri_target(str(dest["uri"]))
            return [(filters, steps, t, trig, delivery)] if t else []
        ref = dest.get("ref") or {}
        kind, name = str(ref.get("kind") or ""), str(ref.get("name") or "")
        if (kind, name) in seen:
            self.problem(where, f"loop through {kind}/{name}: not followed")
            return []
        seen = seen | {(kind, name)}
        if (kind, name) not in self.by_kind:
            self.problem(where, f"sink {kind}/{name} is not in the given manifests")
            return []
        f, doc = self.by_kind[(kind, name)]
        here = self._where(f, doc)
        if kind in _BROKERS:
            known = self.step_types.get(steps[-1]) if steps else None
            return self.through_broker(name, filters, steps, trig, seen, here, known)
        if kind in TARGETS:
            t = self.target(kind, name)
            return [(filters, steps, t, trig, delivery)] if t else []
        if kind in STEPS:
            s = self.step(kind, name)
            if s is None:
                return []
            sink = (doc.get("spec") or {}).get("sink")
            if sink is None and trig:
                broker = self.trigger_broker(trig[-1])
                return self.through_broker(
                    broker, filters, [*steps, s], trig, seen, here, self.step_types.get(s)
                )
            return self.walk(sink, filters, [*steps, s], trig, delivery, seen, here)
        if kind == "Filter":
            expr = (doc.get("spec") or {}).get("expression")
            try:
                flt = convert_expression(str(expr or ""))
            except Unsupported as e:
                self.problem(here, f"expression not converted ({e}): the path through it is dropped")
                return []
            filters, steps = self.add_filters(filters, steps, [flt], here)
            return self.walk((doc.get("spec") or {}).get("sink"), filters, steps, trig, delivery, seen, here)
        if kind == "Splitter":
            self.problem(here, "Splitter is not converted: split with a jq step (e.g. '.data.items[] | …')")
            return []
        self.problem(here, f"{kind} is not supported as a sink or subscriber")
        return []

    def add_filters(self, filters: list, steps: list, new: list, where: str) -> tuple[list, list]:
        if not steps:
            return [*filters, *new], steps
        # After a step the event has changed: keep the check as a jq step that drops non-matching events.
        try:
            expr = " and ".join(f"({dialect_to_jq(x)})" for x in new)
        except Unsupported as e:
            self.problem(where, f"filter after a transformation not converted: {e}")
            return filters, steps
        name = self._unique("select", [s["name"] for s in self.step_decls])
        self.step_decls.append({"name": name, "type": "jq", "config": {"program": f"select({expr})"}})
        self.step_types[name] = None
        return filters, [*steps, name]

    def trigger_broker(self, trig: str) -> str:
        for _, d in self.triggers:
            if _name(d) == trig:
                return _broker_name(d)
        return ""

    def through_broker(
        self,
        broker: str,
        filters: list,
        steps: list,
        trig: tuple[str, ...],
        seen: frozenset,
        where: str,
        reply_type: str | None,
    ) -> list[tuple[list, list, str, tuple[str, ...], Any]]:
        routes = []
        replying = bool(steps)  # transformed events re-enter the broker
        for f, d in self.triggers:
            if _broker_name(d) != broker:
                continue
            here = self._where(f, d)
            s = d.get("spec") or {}
            try:
                tfilters = _trigger_filters(s)
            except Unsupported as e:
                self.problem(here, f"filters not converted ({e}): trigger skipped")
                continue
            if replying:
                # A step's reply re-entered the broker: follow triggers that take exactly its type.
                if ("Trigger", _name(d)) in seen:
                    continue
                want = _only_type(tfilters)
                if reply_type is None or want != reply_type:
                    continue
                tfilters = []
            delivery = s.get("delivery") or self.broker_delivery.get(broker)
            dest = s.get("subscriber") or s.get("target")
            nf, ns = self.add_filters(filters, steps, tfilters, here) if tfilters else (filters, steps)
            chain = (*trig, _name(d))
            routes += self.walk(dest, nf, ns, chain, delivery, seen | {("Trigger", _name(d))}, here)
        if replying and not routes:
            self.problem(where, "its reply goes back to the broker and no trigger takes it: give it a sink")
        return routes

    # ------------------------------------------------------------------ delivery

    def delivery(self, d: Any, where: str) -> dict[str, Any] | None:
        if not isinstance(d, dict) or not d:
            return None
        out: dict[str, Any] = {}
        if d.get("retry") is not None:
            out["retries"] = int(d["retry"])
        backoff: dict[str, Any] = {}
        if d.get("backoffPolicy"):
            backoff["policy"] = str(d["backoffPolicy"]).lower()
        if d.get("backoffDelay"):
            try:
                backoff["delay"] = iso_duration(d["backoffDelay"])
            except Unsupported as e:
                self.problem(where, f"delivery.backoffDelay: {e}")
        if backoff:
            out["backoff"] = backoff
        if d.get("deadLetterSink"):
            routes = self.walk(d["deadLetterSink"], [], [], (), None, frozenset(), where)
            if len(routes) == 1 and not routes[0][0] and not routes[0][1]:
                out["deadLetter"] = routes[0][2]
            else:
                self.problem(where, "delivery.deadLetterSink must lead straight to one target")
        if d.get("timeout"):
            self.problem(where, "delivery.timeout: set the target's own timeout instead")
        return out or None

    # ------------------------------------------------------------------ assemble

    def run(self, name: str) -> ImportResult:
        for _, d in self.docs:
            kind = str(d.get("kind") or "")
            if kind in _BROKERS and (d.get("spec") or {}).get("delivery"):
                self.broker_delivery[_name(d)] = d["spec"]["delivery"]
        routes: list[_Route] = []
        for f, d in self.docs:
            kind = str(d.get("kind") or "")
            api = str(d.get("apiVersion") or "")
            where = self._where(f, d)
            if kind in SOURCES and ("sources." in api or api == ""):
                self.ctx.where = where
                try:
                    type_id, config = SOURCES[kind](d, self.ctx)
                except Unsupported as e:
                    self.problem(where, f"not converted: {e}")
                    continue
                src = self._unique(_clean(_name(d)), list(self.sources))
                self.sources[src] = {"name": src, "type": type_id, "config": config}
                for filters, steps, target, trig, delivery in self.walk(
                    (d.get("spec") or {}).get("sink"), [], [], (), None, frozenset(), where
                ):
                    routes.append(_Route(src, filters, steps, target, trig, delivery))
            elif kind.endswith("Source") and kind not in SOURCES:
                self.problem(where, f"{kind} has no Meshline source: not converted")
            elif kind.endswith("Target") and kind not in TARGETS:
                self.problem(where, f"{kind} has no Meshline target: not converted")
            elif kind in ("Synchronizer", "Function", "DataWeaveTransformation"):
                self.problem(where, f"{kind} is not converted (use a python or http step)")
            elif kind in _IGNORED or kind in _BROKERS or kind in ("Trigger", "Filter", "Splitter"):
                continue
            elif kind not in TARGETS and kind not in STEPS and kind != "Service":
                self.problem(where, f"{kind} ({api}) is not converted")

        triggers = self.assemble(routes)
        spec: dict[str, Any] = {}
        if self.ctx.parameters:
            spec["parameters"] = self.ctx.parameters
        spec["sources"] = list(self.sources.values())
        if self.step_decls:
            spec["transformations"] = self.step_decls
        spec["targets"] = self.target_decls
        spec["triggers"] = triggers
        dls = {b: self.delivery(d, f"Broker/{b}") for b, d in self.broker_delivery.items()}
        dl_targets = {d.get("deadLetter") for d in dls.values() if d and d.get("deadLetter")}
        if len(dl_targets) == 1:
            spec["deadLetter"] = dl_targets.pop()
        spec["tests"] = []
        integration = {
            "apiVersion": "meshline.dev/v1alpha1",
            "kind": "Integration",
            "metadata": {"name": name, "description": "Imported from TriggerMesh/Knative manifests."},
            "spec": spec,
        }
        if not self.sources:
            self.problems.append("no source could be converted: the integration has no sources")
        return ImportResult(integration, self.problems, self.ctx.notes)

    def assemble(self, routes: list[_Route]) -> list[dict[str, Any]]:
        merged: dict[tuple, dict[str, Any]] = {}
        for r in routes:
            key = (repr(r.filters), tuple(r.steps), r.target, r.trigger, repr(r.delivery))
            if key in merged:
                if r.source not in merged[key]["sources"]:
                    merged[key]["sources"].append(r.source)
                continue
            trig: dict[str, Any] = {"name": "", "sources": [r.source]}
            if r.filters:
                trig["filters"] = r.filters
            if r.steps:
                trig["steps"] = r.steps
            trig["target"] = r.target
            label = "-then-".join(_clean(t) for t in r.trigger)
            delivery = self.delivery(r.delivery, f"Trigger/{label}") if r.delivery else None
            if delivery:
                trig["delivery"] = delivery
            merged[key] = trig
            trig["_base"] = label or f"{r.source}-to-{r.target}"
        out: list[dict[str, Any]] = []
        taken: list[str] = []
        for trig in merged.values():
            trig["name"] = self._unique(trig.pop("_base"), taken)
            taken.append(trig["name"])
            if len(self.sources) > 1 and set(trig["sources"]) == set(self.sources):
                del trig["sources"]  # every source: the default
            out.append(trig)
        return out


def _broker_name(trigger: dict[str, Any]) -> str:
    b = (trigger.get("spec") or {}).get("broker")
    if isinstance(b, dict):
        return str(b.get("name") or "")
    return str(b or "default")


def _trigger_filters(spec: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    attrs = ((spec.get("filter") or {}).get("attributes")) or {}
    exact = {k: str(v) for k, v in attrs.items() if v not in ("", None)}
    if exact:
        out.append({"exact": exact})
    for f in spec.get("filters") or []:
        out.append(_dialect(f))
    return out


_DIALECTS = ("exact", "prefix", "suffix", "all", "any", "not", "cesql")


def _dialect(f: Any) -> dict[str, Any]:
    if not isinstance(f, dict) or len(f) != 1:
        raise Unsupported(f"a filter needs exactly one dialect, got {f!r}")
    ((k, v),) = f.items()
    if k == "sql":
        k = "cesql"
    if k not in _DIALECTS:
        raise Unsupported(f"filter dialect {k!r}")
    if k in ("all", "any"):
        return {k: [_dialect(x) for x in v or []]}
    if k == "not":
        return {k: _dialect(v)}
    if k == "cesql":
        return {k: str(v)}
    return {k: {str(a): str(b) for a, b in (v or {}).items()}}


def _only_type(filters: list[dict[str, Any]]) -> str | None:
    if len(filters) == 1 and set(filters[0]) == {"exact"} and set(filters[0]["exact"]) == {"type"}:
        return filters[0]["exact"]["type"]
    return None


def _type_set_by(type_id: str, config: dict[str, Any]) -> str | None:
    """The event type a Bumblebee mapping sets (``context: add type``), when it is a constant."""
    if type_id != "mapping":
        return None
    for op in config.get("context") or []:
        if op["operation"] == "add":
            for p in op["paths"]:
                if p.get("key") == "type" and isinstance(p.get("value"), str):
                    return p["value"]
    return None


def convert(docs: list[tuple[str, dict[str, Any]]], *, name: str = "imported") -> ImportResult:
    """Convert loaded manifests; the result says what could not be converted and why."""
    return _Importer(docs).run(name)
