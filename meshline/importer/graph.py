"""The graph walk behind ``meshline import triggermesh`` (see :mod:`meshline.importer.triggermesh`).

:class:`Importer` follows every path from each source through brokers, triggers,
routing filters and flow components to a target, converting components on the way
(:class:`~meshline.importer.convert.Components`, once each), and assembles one
Meshline trigger per path. It also decides what the output leaves out: components that end up on no
path, manifests no source reaches, fields no converter read.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from meshline.importer.attributes import (
    Known,
    keeps,
    known_attributes,
    rename_type,
    static_match,
)
from meshline.importer.cel import (
    convert_expression,
    dialect_to_jq,
    iso_duration,
    python_filter,
    trigger_filters,
)
from meshline.importer.convert import Components, doc_name, doc_spec, where_of
from meshline.importer.manifest import Context, Fields, Unsupported, dns_label, unique
from meshline.importer.tm_components import STEPS, TARGETS
from meshline.importer.tm_sources import SOURCES

__all__ = ["Importer", "Outcome"]

_BROKERS = ("Broker", "RedisBroker", "MemoryBroker")
_KUBERNETES = (
    "Namespace",
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "ClusterRole",
    "ClusterRoleBinding",
    "Pod",
    "Deployment",
    "StatefulSet",
    "Job",
    "CronJob",
    "PersistentVolumeClaim",
)
_NOT_CONVERTED_FLOWS = ("Synchronizer", "Function", "DataWeaveTransformation")
# Event types that changed between TriggerMesh/Knative sources and Meshline's (SPEC §2).
_KAFKA_TYPE = "dev.meshline.kafka.message"
_TYPES_BEFORE = {
    ("KafkaSource", False): "io.triggermesh.kafka.event",
    ("KafkaSource", True): "dev.knative.kafka.event",
}


@dataclass
class Outcome:
    """What one import produced: the integration (``None`` when nothing converts) and its lines."""

    integration: dict[str, Any] | None
    problems: list[str]
    notes: list[str]
    error: str | None = None


@dataclass(frozen=True)
class _State:
    """Where a walk stands on one path from a source."""

    filters: tuple[dict[str, Any], ...] = ()  # met before the first step
    steps: tuple[str, ...] = ()
    triggers: tuple[str, ...] = ()  # the Knative triggers passed, in order
    deliveries: tuple[tuple[str, str, Any], ...] = ()  # (trigger, where, delivery) on the path
    known: tuple[tuple[str, str], ...] = ()
    seen: frozenset[tuple[str, str]] = frozenset()  # components since the last trigger (loop guard)
    renamed: tuple[str, str, str] | None = None  # (TriggerMesh type, Meshline type, source) of the source

    def knows(self) -> Known:
        return dict(self.known)

    def with_known(self, known: Known) -> _State:
        return dataclasses.replace(self, known=tuple(sorted(known.items())))


@dataclass
class _Route:
    source: str
    state: _State
    target: str


@dataclass
class _Trigger:
    """A Knative/TriggerMesh Trigger, read once."""

    name: str
    where: str
    broker: str
    filters: list[dict[str, Any]] | None  # None: not convertible (reported)
    subscriber: Any
    field: str  # spec.subscriber or spec.target
    delivery: Any  # the raw delivery mapping, converted when used


class Importer:
    def __init__(self, docs: list[tuple[str, dict[str, Any]]]):
        self.ctx = Context()
        self.docs: list[tuple[str, dict[str, Any]]] = []
        self.by_key: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
        self.order: dict[str, int] = {}  # where → position, to print lines in manifest order
        self.lines: list[tuple[str, str]] = []  # manifest-level problems: (where, text)
        self.named: set[str] = set()  # manifests a manifest-level line is about
        self.reached: set[tuple[str, str]] = set()
        self.triggers: list[_Trigger] = []
        self.considered: set[str] = set()  # triggers a path reached the broker of
        self.matched: set[str] = set()  # triggers a path went through
        self.brokers_seen: set[str] = set()
        self.broker_delivery: dict[str, tuple[str, Any]] = {}
        self.sources: dict[str, dict[str, Any]] = {}
        self.deliveries: dict[int, dict[str, Any] | None] = {}
        self.http_port = 8080  # each webhook gets its own port
        self.dead_ends: dict[str, str] = {}  # where → why a path through it ended
        self.components = Components(self.ctx, self.by_key, self.order, self.problem)
        for f, d in docs:
            key = (str(d.get("kind") or ""), doc_name(d))
            where = where_of(f, d)
            self.order.setdefault(where, len(self.order))
            if key in self.by_key:
                first = self.by_key[key][0]
                self.problem(where, f"{key[0]}/{key[1]} is defined twice; the one in {first} is used")
                continue
            self.by_key[key] = (f, d)
            self.docs.append((f, d))
        for f, d in self.docs:
            if d.get("kind") == "Trigger":
                self.triggers.append(self.read_trigger(f, d))

    # ------------------------------------------------------------------ reporting

    def problem(self, where: str, text: str) -> None:
        if (where, text) not in self.lines:
            self.lines.append((where, text))
            self.named.add(where)

    # ------------------------------------------------------------------ the graph walk

    def walk(self, dest: Any, st: _State, where: str, at: str) -> list[tuple[_State, str]]:
        """Every ``(state, target)`` a path from ``dest`` ends in; ``at`` names the field holding ``dest``."""
        if not isinstance(dest, dict) or not (dest.get("ref") or dest.get("uri")):
            self.problem(where, f"it has no {at} (ref or uri): its events go nowhere")
            return []
        for extra in sorted(set(dest) - {"ref", "uri"}):
            self.ctx.where = where
            self.ctx.problem(f"{at}.{extra}: Meshline has no such destination option")
        ref, uri = dest.get("ref"), dest.get("uri")
        if not ref:
            t = self.components.uri_target(str(uri), where)
            return [(st, t)] if t else []
        if uri:
            self.ctx.where = where
            self.ctx.problem(f"{at}.uri: a path relative to the ref is not supported")
        if not isinstance(ref, dict):
            self.problem(where, f"{at}.ref: expected kind and name")
            return []
        key = (str(ref.get("kind") or ""), str(ref.get("name") or ""))
        kind, name = key
        if key not in self.by_key:
            if kind in _BROKERS and any(t.broker == name for t in self.triggers) and key not in st.seen:
                # The broker lives in the cluster; the triggers on it are here.
                st = dataclasses.replace(st, seen=st.seen | {key})
                return self.through_broker(name, st, where, reply=bool(st.steps))
            self.problem(where, f"{at} {kind}/{name} is not in the given manifests")
            return []
        self.reached.add(key)
        if key in st.seen:
            self.problem(where, f"{at} {kind}/{name} leads back to itself (a loop): not followed")
            return []
        st = dataclasses.replace(st, seen=st.seen | {key})
        here = self.components.where_key(key)
        doc = self.by_key[key][1]
        if kind in _BROKERS:
            return self.through_broker(name, st, here, reply=bool(st.steps))
        if kind in TARGETS:
            t = self.components.target(kind, name)
            return [(st, t)] if t else []
        if kind in STEPS:
            names = self.components.step(kind, name)
            if names is None:
                return []
            known = st.knows()
            for s in names:
                known = self.components.effects[s](known)
            st = dataclasses.replace(st, steps=st.steps + tuple(names)).with_known(known)
            sink = doc_spec(doc).get("sink")
            if sink is None and st.triggers:
                # Knative: a subscriber's reply goes back to the broker of the trigger that called it.
                broker = self.trigger_named(st.triggers[-1]).broker
                return self.through_broker(broker, st, here, reply=True)
            return self.walk(sink, st, here, "spec.sink")
        if kind == "Filter":
            return self.through_filter(doc, st, here)
        if kind == "Splitter":
            self.problem(here, "Splitter: split with a jq step (e.g. '.data.items[] | …')")
            return []
        if kind in _NOT_CONVERTED_FLOWS:
            self.problem(here, f"{kind} (use a python or http step)")
            return []
        self.problem(here, f"{kind} has no Meshline equivalent")
        return []

    def through_filter(self, doc: dict[str, Any], st: _State, here: str) -> list[tuple[_State, str]]:
        fields = Fields(doc, self.ctx)
        self.ctx.where = here
        try:
            flt = convert_expression(str(fields.get("expression") or ""))
        except Unsupported as e:
            self.problem(here, f"spec.expression ({e}): the paths through it are dropped")
            return []
        fields.get("sink")
        if here not in self.named:
            for path in fields.unused():
                self.ctx.problem(f"{path}: a routing Filter has only expression and sink")
        (flt,) = self.renamed([flt], st, here)
        decided = static_match(flt, st.knows())
        if decided is False:
            self.ctx.note("a path ends here: no event on it can match the expression")
            return []
        nst = self.add_filters(st, [] if decided else [flt], dns_label(doc_name(doc) or "filter"), here)
        if nst is None:
            return []
        return self.walk(doc_spec(doc).get("sink"), nst, here, "spec.sink")

    def add_filters(self, st: _State, new: list[dict[str, Any]], label: str, where: str) -> _State | None:
        if not new:
            return st
        known = {**st.knows(), **known_attributes(new)}
        if not st.steps:
            return dataclasses.replace(st, filters=st.filters + tuple(new)).with_known(known)
        # After a step the event has changed: a step drops the events that do not match.
        try:
            program = "select(" + " and ".join(f"({dialect_to_jq(x)})" for x in new) + ")"
            name = self.components.add_step(f"{label}-filter", "jq", {"program": program}, None, keeps)
        except Unsupported:
            name = self.components.add_step(
                f"{label}-filter", "python", {"code": python_filter(new)}, None, keeps
            )
        return dataclasses.replace(st, steps=(*st.steps, name)).with_known(known)

    def renamed(self, filters: list[dict[str, Any]], st: _State, where: str) -> list[dict[str, Any]]:
        """``filters`` with the source's TriggerMesh event type replaced by the type Meshline gives."""
        if st.renamed is None:
            return filters
        old, new, source = st.renamed
        out = [rename_type(f, old, new) for f in filters]
        if out != filters:
            self.ctx.where = where
            self.ctx.note(
                f"a filter on type {old} reads {new} for the events of {source} "
                "(the type Meshline's source gives them)"
            )
        return out

    def trigger_named(self, name: str) -> _Trigger:
        return next(t for t in self.triggers if t.name == name)

    def read_trigger(self, f: str, d: dict[str, Any]) -> _Trigger:
        where = where_of(f, d)
        fields = Fields(d, self.ctx)
        self.ctx.where = where
        broker = fields.get("broker")
        broker_name = str(broker.get("name") or "") if isinstance(broker, dict) else str(broker or "default")
        filters: list[dict[str, Any]] | None
        try:
            filters = trigger_filters(fields)
        except Unsupported as e:
            self.problem(where, f"filters ({e}): the trigger is skipped")
            filters = None
        at = "spec.subscriber" if fields.has("subscriber") else "spec.target"
        subscriber = fields.get(at[len("spec.") :])
        delivery = fields.peek("delivery")
        _mark_delivery(fields)
        for path in fields.unused():
            self.ctx.problem(f"{path}: Meshline has no such trigger option")
        return _Trigger(doc_name(d), where, broker_name, filters, subscriber, at, delivery)

    def through_broker(self, broker: str, st: _State, where: str, reply: bool) -> list[tuple[_State, str]]:
        self.visit_broker(broker)
        routes: list[tuple[_State, str]] = []
        taken = False
        for t in self.triggers:
            if t.broker != broker or t.filters is None:
                continue
            self.considered.add(t.name)
            filters = self.renamed(t.filters, st, t.where)
            decided = static_match({"all": filters}, st.knows()) if filters else True
            if decided is False:
                continue
            if t.name in st.triggers:
                chain = " → ".join(f"Trigger/{n}" for n in (*st.triggers, t.name))
                self.problem(
                    t.where,
                    f"the path {chain} takes events back into it (a loop): the repeat is not followed",
                )
                continue
            self.matched.add(t.name)
            taken = True
            # keep only the filters the known attributes do not already decide
            undecided = [x for x in filters if static_match(x, st.knows()) is None]
            nst = self.add_filters(st, undecided, t.name, t.where)
            if nst is None:
                continue
            d_where, delivery = (
                (t.where, t.delivery) if t.delivery else self.broker_delivery.get(broker, ("", None))
            )
            nst = dataclasses.replace(
                nst,
                triggers=(*st.triggers, t.name),
                deliveries=(*st.deliveries, (t.name, d_where, delivery)),
                seen=frozenset(),
            )
            routes += self.walk(t.subscriber, nst, t.where, t.field)
        if reply and not taken:
            # Said only if the component ends up on no path at all (see forget_unused).
            self.dead_ends.setdefault(
                where, f"its output returns to broker {broker} and no trigger there takes it"
            )
        return routes

    def visit_broker(self, name: str) -> None:
        if name in self.brokers_seen:
            return
        self.brokers_seen.add(name)
        for kind in _BROKERS:
            key = (kind, name)
            if key not in self.by_key:
                continue
            self.reached.add(key)
            f, d = self.by_key[key]
            fields = Fields(d, self.ctx)
            where = where_of(f, d)
            self.ctx.where = where
            if fields.has("delivery"):
                self.broker_delivery[name] = (where, fields.peek("delivery"))
            _mark_delivery(fields)
            for path in fields.unused():
                self.ctx.problem(f"{path}: Meshline has no broker (events go straight to triggers)")
            return
        self.ctx.where = ""
        self.ctx.note(f"Broker/{name} is not among the manifests: the triggers on it are followed")

    # ------------------------------------------------------------------ delivery

    def delivery(self, d: Any, where: str) -> dict[str, Any] | None:
        """A Knative ``delivery`` → a Meshline trigger ``delivery`` (once per mapping)."""
        if id(d) in self.deliveries:
            return self.deliveries[id(d)]
        self.deliveries[id(d)] = None
        if not isinstance(d, dict) or not d:
            return None
        self.ctx.where = where
        out: dict[str, Any] = {}
        if d.get("retry") is not None:
            try:
                out["retries"] = max(0, int(d["retry"]))
            except (TypeError, ValueError):
                self.ctx.problem(f"spec.delivery.retry: expected a number, got {d['retry']!r}")
        backoff: dict[str, Any] = {}
        policy = str(d.get("backoffPolicy") or "").lower()
        if policy in ("linear", "exponential", "constant"):
            backoff["policy"] = policy
        elif policy:
            self.ctx.problem(f"spec.delivery.backoffPolicy: {policy!r} is not linear or exponential")
        if d.get("backoffDelay"):
            try:
                backoff["delay"] = iso_duration(d["backoffDelay"])
            except Unsupported as e:
                self.ctx.problem(f"spec.delivery.backoffDelay: {e}")
        if backoff:
            out["backoff"] = backoff
        if d.get("deadLetterSink"):
            routes = self.walk(d["deadLetterSink"], _State(), where, "spec.delivery.deadLetterSink")
            self.ctx.where = where
            if len(routes) == 1 and not routes[0][0].filters and not routes[0][0].steps:
                out["deadLetter"] = routes[0][1]
            else:
                self.ctx.problem(
                    "spec.delivery.deadLetterSink: it must lead straight to one converted target"
                )
        if d.get("timeout"):
            self.ctx.problem("spec.delivery.timeout: set the target's own timeout instead")
        if d.get("retryAfterMax"):
            self.ctx.problem("spec.delivery.retryAfterMax: Meshline follows Retry-After up to backoff.max")
        self.deliveries[id(d)] = out or None
        return out or None

    # ------------------------------------------------------------------ assemble

    def run(self, name: str) -> Outcome:
        label = dns_label(name)
        if label != name:
            self.ctx.where = ""
            self.ctx.note(f"the integration is named {label!r} ({name!r} is not a lowercase DNS label)")
        routes: list[_Route] = []
        unused_sources: list[tuple[str, str]] = []  # (meshline name, where)
        for f, d in self.docs:
            kind, api = str(d.get("kind") or ""), str(d.get("apiVersion") or "")
            where = where_of(f, d)
            if kind in SOURCES and ("sources." in api or api == ""):
                routes += self.source(d, where, unused_sources)
            elif kind.endswith("Source") or "sources." in api:
                self.problem(where, f"{kind} has no Meshline source")
        triggers = self.assemble(routes)
        dead_letters = {
            b: self.delivery(d, w) for b, (w, d) in self.broker_delivery.items() if b in self.brokers_seen
        }
        dl_targets = {d["deadLetter"] for d in dead_letters.values() if d and d.get("deadLetter")}
        spec: dict[str, Any] = {}
        self.forget_unused(triggers, dl_targets, unused_sources)
        self.report_unreached()
        if self.ctx.parameters:
            spec["parameters"] = self.ctx.parameters
        spec["sources"] = list(self.sources.values())
        used_steps = {s for t in triggers for s in t.get("steps", [])}
        steps = [d for n, d in self.components.step_decls.items() if n in used_steps]
        if steps:
            spec["transformations"] = steps
        used_targets = {t["target"] for t in triggers} | dl_targets
        for t in triggers:
            if t.get("delivery", {}).get("deadLetter"):
                used_targets.add(t["delivery"]["deadLetter"])
        spec["targets"] = [d for n, d in self.components.target_decls.items() if n in used_targets]
        spec["triggers"] = triggers
        if len(dl_targets) == 1:
            spec["deadLetter"] = dl_targets.pop()
        spec["tests"] = []
        integration = {
            "apiVersion": "meshline.dev/v1alpha1",
            "kind": "Integration",
            "metadata": {"name": label, "description": "Imported from TriggerMesh/Knative manifests."},
            "spec": spec,
        }
        problems, notes = self.printed()
        if not triggers:
            why = "no path from a converted source reaches a converted target: nothing to write"
            return Outcome(None, problems, notes, why)
        return Outcome(integration, problems, notes)

    def source(self, d: dict[str, Any], where: str, unused: list[tuple[str, str]]) -> list[_Route]:
        """Convert one source and follow its sink; a source no path leads on from goes to ``unused``."""
        kind, api = str(d.get("kind") or ""), str(d.get("apiVersion") or "")
        converted = self.components.convert((kind, doc_name(d)), SOURCES, "source")
        if converted is None:
            return []
        type_id, config = converted
        self.ctx.where = where
        if type_id == "http":
            config["port"] = self.http_port
            self.ctx.note(
                f"the webhook listens on 127.0.0.1:{self.http_port}{config['path']}; set host: 0.0.0.0 to "
                "take posts from other machines (TriggerMesh's webhook was reachable in the cluster)"
            )
            self.http_port += 1
        start = _State()
        old = _TYPES_BEFORE.get((kind, "knative" in api))
        if old and type_id == "kafka":
            start = _State(renamed=(old, _KAFKA_TYPE, f"{kind}/{doc_name(d)}"))
            self.ctx.note(
                f"Meshline's kafka source types events {_KAFKA_TYPE} with source kafka://SERVERS/TOPIC "
                f"(TriggerMesh: {old}); filters on the type are rewritten, filters on the source are not"
            )
        src = unique(doc_name(d), [*self.sources, *(s for s, _ in unused)])
        found = self.walk(doc_spec(d).get("sink"), start, where, "spec.sink")
        if not found:
            unused.append((src, where))
            return []
        self.sources[src] = {"name": src, "type": type_id, "config": config}
        self.components.owner[("source", src)] = where
        return [_Route(src, st, target) for st, target in found]

    def forget_unused(
        self, triggers: list[dict[str, Any]], dl_targets: set[str], unused_sources: list[tuple[str, str]]
    ) -> None:
        """Components converted on paths that end nowhere: take back their notes and parameters."""
        used: set[str] = {w for s, w in self.components.owner.items() if s[0] == "source"}
        names = {("step", s) for t in triggers for s in t.get("steps", [])}
        names |= {("target", t["target"]) for t in triggers} | {("target", t) for t in dl_targets}
        names |= {
            ("target", t["delivery"]["deadLetter"])
            for t in triggers
            if t.get("delivery", {}).get("deadLetter")
        }
        used |= {self.components.owner[n] for n in names if n in self.components.owner}
        gone = {w for w in self.components.owner.values() if w not in used} | {w for _, w in unused_sources}
        self.ctx.forget(gone)
        for where in sorted(gone, key=lambda w: self.order.get(w, 0)):
            if where not in self.named:
                self.problem(
                    where, self.dead_ends.get(where, "no path through it reaches a converted target")
                )

    def report_unreached(self) -> None:
        origins = self.ctx.origins()
        secrets_used = {
            origins[p["name"]].split(":", 1)[1].split("/", 1)[0]
            for p in self.ctx.parameters
            if origins[p["name"]].startswith("secret:")
        }
        for f, d in self.docs:
            kind, name = str(d.get("kind") or ""), doc_name(d)
            where = where_of(f, d)
            if (
                (kind, name) in self.reached
                or where in self.named
                or (kind == "Trigger" and name in self.matched)
            ):
                continue
            api = str(d.get("apiVersion") or "")
            if kind in SOURCES and ("sources." in api or api == ""):
                continue
            self.ctx.forget({where})  # what it would have carried is moot: the manifest is not
            if kind == "Secret":
                if name not in secrets_used:
                    self.problem(where, "nothing converted refers to this Secret")
                continue  # its values are parameters, never copied
            if kind == "ConfigMap":
                self.problem(where, "Meshline reads no ConfigMaps")
            elif kind in _KUBERNETES:
                self.problem(where, f"a Kubernetes {kind} is not part of an integration")
            elif kind == "Trigger" and name in self.considered:
                self.problem(where, "no event that reaches its broker can match its filters")
            elif kind.endswith("Target") and kind not in TARGETS:
                self.problem(where, f"{kind} has no Meshline target (and no converted source reaches it)")
            else:
                self.problem(where, "no converted source reaches it")

    def assemble(self, routes: list[_Route]) -> list[dict[str, Any]]:
        merged: dict[str, dict[str, Any]] = {}
        for r in routes:
            st = r.state
            last = st.deliveries[-1] if st.deliveries else None
            delivery = self.delivery(last[2], last[1]) if last and last[2] else None
            for _, where, d in st.deliveries[:-1]:
                if d and d is not (last[2] if last else None):
                    self.ctx.where = where
                    self.ctx.problem(
                        f"spec.delivery: not carried on the path through Trigger/{st.triggers[-1]}: "
                        "a Meshline trigger has one delivery (the last Knative trigger's)"
                    )
            key = json.dumps([st.filters, st.steps, r.target, st.triggers, delivery], sort_keys=True)
            if key in merged:
                if r.source not in merged[key]["sources"]:
                    merged[key]["sources"].append(r.source)
                continue
            trig: dict[str, Any] = {"name": "", "sources": [r.source]}
            if st.filters:
                trig["filters"] = list(st.filters)
            if st.steps:
                trig["steps"] = list(st.steps)
            trig["target"] = r.target
            if delivery:
                trig["delivery"] = delivery
            trig["_base"] = "-then-".join(st.triggers) or f"{r.source}-to-{r.target}"
            merged[key] = trig
        out: list[dict[str, Any]] = []
        taken: list[str] = []
        for trig in merged.values():
            trig["name"] = unique(trig.pop("_base"), taken)
            taken.append(trig["name"])
            out.append(trig)
        all_sources = set(self.sources)
        for trig in out:
            if len(all_sources) > 1 and set(trig["sources"]) == all_sources:
                del trig["sources"]  # every source: the default
        return out

    def printed(self) -> tuple[list[str], list[str]]:
        """Problem and note lines, grouped by manifest in the order given; no secret value in them."""

        def order(item: tuple[int, tuple[str, str]]) -> tuple[int, int]:
            return (self.order.get(item[1][0], -1), item[0])

        problems = [*self.lines, *self.ctx.problems]
        lines = [f"{w}: {t}" if w else t for _, (w, t) in sorted(enumerate(problems), key=order)]
        notes = [f"{w}: {t}" if w else t for _, (w, t) in sorted(enumerate(self.ctx.notes), key=order)]
        return [_redact(x, self.ctx.secret_values) for x in lines], [
            _redact(x, self.ctx.secret_values) for x in notes
        ]


def _redact(line: str, secrets: set[str]) -> str:
    for s in secrets:
        if len(s) >= 3:
            line = line.replace(s, "***")
    return line


def _mark_delivery(fields: Fields) -> None:
    for key in ("retry", "backoffPolicy", "backoffDelay", "deadLetterSink", "timeout", "retryAfterMax"):
        fields.get(f"delivery.{key}")
