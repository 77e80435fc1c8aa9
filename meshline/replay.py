"""``meshline replay FILE --from TARGET``: dead letters sent through the integration again.

A dead letter says where it failed (``meshlineerrorstage``, ``meshlinetrigger``,
``meshlinestep``: :func:`meshline.events.dead_letter`), so it can go back exactly
where it failed, once, and nowhere else (:func:`route_of`):

- ``filter`` / ``transform``: through the trigger named in ``meshlinetrigger`` only —
  its filters, its steps, its target. The source's other triggers already delivered
  the event; sending it through them again would duplicate it.
- ``deliver``: straight to the target of the triggers named in ``meshlinetrigger``,
  without running any step again (the event already went through them).
- ``decode``: the raw payload is decoded again; when it now is a CloudEvent it goes
  through every trigger of the source (``meshlinestep``), else it is not replayable.

Every ``meshline*`` attribute is removed before an event is sent (:func:`strip`).

The run is the integration itself, built by :func:`meshline.compiler.build_pipeline`
from a *replay model* (:func:`replay_model`): the file's sources are replaced by one
bounded source per route — ``replay:trigger:T`` feeding only trigger ``T``,
``replay:source:S`` feeding the triggers of source ``S``, ``replay:target:X`` feeding
a trigger without filters or steps whose target is ``X`` — and everything else
(targets, dead-letter targets, retry policies) is the file's. So what fails again is
dead-lettered again by the normal machinery, to the same dead-letter target, with
the same attributes (a ``deliver`` failure names the same triggers: the target's
dead letters are re-stamped with the file's feeding triggers, not the replay one's).

Dead letters are read before the pipeline is built (:func:`read_dead_letters`): from
the objects a ``file`` (or ``aws.s3``, ``google.storage``, ``azure.datalake``) target
wrote, or from a ``kafka`` topic up to the end offsets taken when the read starts.
New dead letters that the replay writes to the same target are never read back in
the same replay. Nothing is removed from the dead-letter target: replaying again
replays the same dead letters again (``--where`` narrows what is sent).

Importing this module imports no Beam; :func:`run_replay` does.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from meshline.errors import ConfigError, EventError, MeshlineError, UsageError
from meshline.events import ERROR_EXTENSIONS, CloudEvent, from_json, from_json_dict
from meshline.spec.model import ComponentDecl, Integration, Trigger

__all__ = [
    "replay_command",
    "OBJECT_TARGETS",
    "READABLE_TARGETS",
    "DeadLetter",
    "Outcome",
    "Planned",
    "Route",
    "describe",
    "plan_replay",
    "read_dead_letters",
    "replay_model",
    "route_of",
    "run_replay",
    "strip",
]

_LOGGER = logging.getLogger(__name__)

#: Target types whose objects replay can list and read back (same formats as they write).
OBJECT_TARGETS = ("file", "aws.s3", "google.storage", "azure.datalake")
READABLE_TARGETS = (*OBJECT_TARGETS, "kafka")
_PREFIX = "meshline"


# --------------------------------------------------------------------------- routing (no Beam)


@dataclass(frozen=True)
class Route:
    """Where one dead letter goes again.

    ``kind``: ``trigger`` (through trigger ``name`` only), ``source`` (decoded again, through
    the triggers of source ``name``), ``target`` (straight to target ``name``) or ``skip``
    (not replayable: ``reason`` says why). ``triggers``/``targets``: what it goes through.
    """

    kind: str
    name: str = ""
    triggers: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    reason: str = ""

    @property
    def replayable(self) -> bool:
        return self.kind != "skip"

    @property
    def source(self) -> str:
        """The replay source that sends it (:func:`replay_model`)."""
        return f"replay:{self.kind}:{self.name}"


@dataclass(frozen=True)
class DeadLetter:
    """A dead letter as read (``meshline*`` attributes included), and where it was read."""

    event: CloudEvent
    where: str


@dataclass(frozen=True)
class Planned:
    """A selected dead letter, its route and the event that is sent (``None``: not replayable)."""

    letter: DeadLetter
    route: Route
    event: CloudEvent | None


def strip(event: CloudEvent) -> CloudEvent:
    """The event without its ``meshline*`` attributes (the four error extensions and any other)."""
    drop = {k: None for k in event.attributes if k.startswith(_PREFIX) or k in ERROR_EXTENSIONS}
    return event.replace(**drop) if drop else event


def _skip(reason: str) -> Route:
    return Route("skip", reason=reason)


def route_of(event: CloudEvent, integration: Integration) -> Route:
    """Where a dead letter goes again in ``integration`` (see the module docstring)."""
    stage = event.attributes.get("meshlineerrorstage")
    named = str(event.attributes.get("meshlinetrigger") or "")
    triggers = {t.name: t for t in integration.triggers}
    if stage in ("filter", "transform"):
        trig = triggers.get(named)
        if trig is None:
            return _skip(f"{stage} failure of trigger {named!r}, which the file no longer has")
        return Route("trigger", named, (named,), (trig.target,))
    if stage == "deliver":
        names = [n for n in named.split(",") if n]
        if not names:
            return _skip("delivery failure of a target no trigger feeds (a dead-letter target)")
        missing = [n for n in names if n not in triggers]
        if missing:
            return _skip(f"delivery failure for trigger(s) the file no longer has: {', '.join(missing)}")
        targets = sorted({triggers[n].target for n in names})
        if len(targets) != 1:
            return _skip(f"delivery failure for triggers with different targets: {', '.join(targets)}")
        return Route("target", targets[0], (), (targets[0],))
    if stage == "decode":
        source = str(event.attributes.get("meshlinestep") or "")
        if source not in {s.name for s in integration.sources}:
            return _skip(f"decode failure of source {source!r}, which the file does not have")
        feeding = [t for t in integration.triggers if source in t.sources]
        if not feeding:
            return _skip(f"decode failure of source {source!r}, which no trigger reads")
        return Route(
            "source",
            source,
            tuple(t.name for t in feeding),
            tuple(dict.fromkeys(t.target for t in feeding)),
        )
    if stage is None:
        return _skip("not a dead letter (no meshlineerrorstage attribute)")
    return _skip(f"unknown meshlineerrorstage {stage!r}")


def _decoded(event: CloudEvent) -> CloudEvent:
    """The CloudEvent in a decode dead letter's raw payload; raises :class:`EventError`."""
    data = event.data
    if isinstance(data, (str, bytes, bytearray)):
        return from_json(data if isinstance(data, str) else bytes(data))
    if isinstance(data, dict):
        return from_json_dict(data)
    raise EventError("the dead letter holds no payload to decode")


def plan_replay(
    letters: Iterable[DeadLetter], integration: Integration, where: Any = None
) -> tuple[int, list[Planned]]:
    """``(read, selected)``: each dead letter ``where`` (a compiled CESQL expression, on the
    dead letter with its ``meshline*`` attributes) selects, with its route and the event sent."""
    read = 0
    planned: list[Planned] = []
    for letter in letters:
        read += 1
        if where is not None:
            ok, _errors = where.matches(letter.event.attributes)
            if not ok:
                continue
        route = route_of(letter.event, integration)
        event: CloudEvent | None = None
        if route.kind == "source":
            try:
                event = strip(_decoded(letter.event))
            except EventError as e:
                route, event = _skip(f"decode failure: the payload still is not a CloudEvent: {e}"), None
        elif route.replayable:
            event = strip(letter.event)
        planned.append(Planned(letter, route, event))
    return read, planned


def replay_model(integration: Integration, routes: Iterable[Route]) -> tuple[Integration, dict[str, str]]:
    """The integration a replay runs, and the file's feeding triggers of each ``target`` route's target.

    Its sources are one placeholder per route (never built: :func:`run_replay` overrides
    each with the route's events); each trigger reads the routes sent through it; a
    ``target`` route gets a trigger ``replay:target:X`` without filters or steps, whose
    delivery (retries, dead-letter target) is that of the file's triggers into ``X``.
    """
    used = {r.source: r for r in routes if r.replayable}
    sources = tuple(
        # A bounded placeholder the registry knows; build_pipeline's source override replaces it.
        ComponentDecl(name=name, type="file", config={"path": name}, kind="source")
        for name in sorted(used)
    )
    triggers: list[Trigger] = []
    for trig in integration.triggers:
        fed = tuple(
            name
            for name, r in sorted(used.items())
            if (r.kind == "trigger" and r.name == trig.name)
            or (r.kind == "source" and r.name in trig.sources)
        )
        triggers.append(dataclasses.replace(trig, sources=fed))
    feeding: dict[str, str] = {}
    for name, r in sorted(used.items()):
        if r.kind != "target":
            continue
        into = [t for t in integration.triggers if t.target == r.name]
        feeding[r.name] = ",".join(t.name for t in into)
        dls = {t.delivery.dead_letter for t in into}
        dl = dls.pop() if len(dls) == 1 else None  # as the compiler picks it: common, else spec's
        delivery = dataclasses.replace(into[0].delivery, dead_letter=dl)
        triggers.append(
            Trigger(name=name, sources=(name,), filters=(), steps=(), target=r.name, delivery=delivery)
        )
    model = dataclasses.replace(integration, sources=sources, triggers=tuple(triggers), tests=())
    return model, feeding


def describe(p: Planned) -> str:
    """One line of ``--dry-run``: the dead letter and where it would go."""
    a = p.letter.event.attributes
    head = f"{a.get('id')} ({a.get('source')}) {a.get('meshlineerrorstage') or '-'}"
    if a.get("meshlinetrigger"):
        head += f" in {a.get('meshlinetrigger')}"
    r = p.route
    if r.kind == "trigger":
        return f"{head}: replay through trigger {r.name} -> target {r.targets[0]}"
    if r.kind == "target":
        return f"{head}: replay to target {r.name} (no steps)"
    if r.kind == "source":
        return f"{head}: replay through triggers {', '.join(r.triggers)} -> {', '.join(r.targets)}"
    return f"{head}: not replayable: {r.reason}"


def describe_json(p: Planned) -> dict[str, Any]:
    """``--dry-run --format json``: one object per dead letter."""
    a = p.letter.event.attributes
    out: dict[str, Any] = {
        "id": a.get("id"),
        "source": a.get("source"),
        "stage": a.get("meshlineerrorstage"),
        "trigger": a.get("meshlinetrigger"),
        "read_from": p.letter.where,
        "replay": p.route.replayable,
        "route": p.route.kind,
        "triggers": list(p.route.triggers),
        "targets": list(p.route.targets),
    }
    if not p.route.replayable:
        out["reason"] = p.route.reason
    return out


@dataclass
class Outcome:
    """The counts a replay reports (``--format json``: :meth:`as_json`)."""

    read: int = 0
    selected: int = 0
    replayed: int = 0
    delivered: int = 0
    dead_lettered: int = 0
    not_replayable: int = 0
    filtered_out: int = 0  # the trigger's filters no longer match
    lost: int = 0  # failures that reached no dead-letter target
    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Every selected dead letter was delivered or dead-lettered again."""
        return (
            not self.not_replayable
            and not self.filtered_out
            and not self.lost
            and self.delivered + self.dead_lettered >= self.replayed
        )

    def line(self) -> str:
        text = (
            f"{self.read} read, {self.selected} selected, {self.replayed} replayed, "
            f"{self.delivered} delivered, "
            f"{self.dead_lettered} dead-lettered again, {self.not_replayable} not replayable"
        )
        if self.filtered_out:
            text += f", {self.filtered_out} filtered out"
        if self.lost:
            text += f", {self.lost} failed with no dead-letter target"
        return text

    def as_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["ok"] = self.ok
        return d


def count_outcome(
    outcome: Outcome, model: Integration, original: Integration, counters: dict[str, int]
) -> None:
    """Fill ``delivered``, ``dead_lettered``, ``filtered_out`` and ``lost`` from a run's counters."""
    dls = {t.delivery.dead_letter for t in original.triggers} | {original.dead_letter}
    dls.discard(None)
    routed = {t.target for t in original.triggers}
    for t in model.targets:
        n = counters.get(f"target.{t.name}.delivered", 0)
        if t.name in dls and t.name not in routed:
            outcome.dead_lettered += n
        else:
            outcome.delivered += n
    for trig in model.triggers:
        p = f"trigger.{trig.name}."
        seen = counters.get(p + "in", 0)
        outcome.filtered_out += max(
            0, seen - counters.get(p + "matched", 0) - counters.get(p + "filter_errors", 0)
        )
    outcome.lost = counters.get("deadletter.dropped", 0)


# --------------------------------------------------------------------------- reading dead letters


def read_dead_letters(integration: Integration, target: str) -> list[DeadLetter]:
    """Every dead letter target ``target`` of ``integration`` holds now (read back as it wrote them)."""
    decl = integration.target(target)
    if decl.type in OBJECT_TARGETS:
        return _read_objects(integration, decl)
    if decl.type == "kafka":
        return _read_kafka(integration, decl)
    raise ConfigError(
        f"replay: cannot read dead letters back from target {target} of type {decl.type}: "
        f"supported: {', '.join(READABLE_TARGETS)}"
    )


def _typed(integration: Integration, decl: ComponentDecl) -> Any:
    from meshline.spec.resolve import resolve

    return resolve(integration).target(decl.name).typed_config()


def _object_store(integration: Integration, decl: ComponentDecl) -> tuple[Any, str, str]:
    """``(store, prefix, format)`` of an object-store target (the store its writer uses)."""
    config = _typed(integration, decl)
    if decl.type == "file":
        from meshline.connectors.file import _MakeFileStore, _split_template

        base, template = _split_template(config.path)
        return _MakeFileStore(base)(), template, config.format
    if decl.type == "aws.s3":
        from meshline.connectors.aws.s3_target import _MakeStore as S3Store

        return S3Store(config)(), config.prefix or "", config.format
    if decl.type == "google.storage":
        from meshline.connectors.gcs.target import _MakeStore as GcsStore

        return GcsStore(config)(), config.prefix or "", config.format
    from meshline.connectors.azure.datalake import _MakeStore as BlobStore

    return BlobStore(config)(), config.prefix or "", config.format


def _read_objects(integration: Integration, decl: ComponentDecl) -> list[DeadLetter]:
    """The events in the target's objects (``part-*`` with its format's extension; not the ledger)."""
    from meshline.connectors.formats import events_from_object, extension
    from meshline.connectors.objects_naming import static_prefix

    store, prefix, fmt = _object_store(integration, decl)
    ext = extension(fmt)
    out: list[DeadLetter] = []
    try:
        keys = sorted(
            k
            for k in store.list_keys(static_prefix(prefix))
            if k.rsplit("/", 1)[-1].startswith("part-") and k.endswith(ext) and ".meshline/" not in k
        )
        for key in keys:
            raw = store.get(key)
            if raw is None:  # removed since it was listed
                continue
            if fmt == "jsonl":
                out.extend(_jsonl_letters(raw, key))
                continue
            try:
                events = events_from_object(fmt, raw)
            except Exception as e:
                raise MeshlineError(f"replay: cannot read {key} of target {decl.name}: {e}") from None
            out.extend(DeadLetter(e, f"{key}#{i}") for i, e in enumerate(events, 1))
    finally:
        store.close()
    return out


def _jsonl_letters(raw: bytes, key: str) -> list[DeadLetter]:
    out = []
    for n, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        try:
            event = from_json(line)
        except EventError as e:
            # Kept as a "dead letter" without a stage: reported as not replayable, with the line.
            event = CloudEvent(
                {
                    "specversion": "1.0",
                    "id": f"{key}:{n}",
                    "source": key,
                    "type": "dev.meshline.replay.unreadable",
                },
                None,
            )
            _LOGGER.warning("replay: %s:%d is not a CloudEvent: %s", key, n, e)
        out.append(DeadLetter(event, f"{key}:{n}"))
    return out


#: Seconds a Kafka read may go without a record before it gives up (the end offsets are known).
KAFKA_STALL_S = 30.0


def _read_kafka(integration: Integration, decl: ComponentDecl) -> list[DeadLetter]:
    """The topic's records from the beginning up to the end offsets taken first (bounded: what
    this replay writes to the topic is not read back); no offset is committed."""
    import time

    from confluent_kafka import Consumer, KafkaError, TopicPartition

    from meshline.connectors.kafka.config import ClientErrors
    from meshline.connectors.kafka.source import KafkaDecoder

    config = _typed(integration, decl)
    topic = config.topic
    props = config.client_properties()
    props.update(
        {
            "group.id": f"meshline-replay-{uuid.uuid4().hex}",  # never joined, never committed
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "enable.partition.eof": True,
            "auto.offset.reset": "earliest",
            "log_level": 0,
            "error_cb": ClientErrors(f"replay from {decl.name}"),
        }
    )
    decoder = KafkaDecoder(config.first_server)
    consumer = Consumer(props)
    out: list[DeadLetter] = []
    try:
        md = consumer.list_topics(topic, timeout=15)
        meta = md.topics.get(topic)
        if meta is None or meta.error is not None:
            why = meta.error.str() if meta is not None and meta.error is not None else "no such topic"
            raise MeshlineError(f"replay: target {decl.name}: topic {topic!r}: {why}")
        ends: dict[int, int] = {}
        starts: list[Any] = []
        for p in sorted(meta.partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=15)
            if high > low:
                ends[p] = high
                starts.append(TopicPartition(topic, p, low))
        if not ends:
            return out
        consumer.assign(starts)
        last = time.monotonic()
        while ends:
            messages: list[Any] = consumer.consume(500, timeout=1.0)
            if not messages and time.monotonic() - last > KAFKA_STALL_S:
                left = ", ".join(f"{topic}[{p}] before offset {o}" for p, o in sorted(ends.items()))
                raise MeshlineError(f"replay: target {decl.name}: no record for {KAFKA_STALL_S:.0f}s; {left}")
            for m in messages:
                last = time.monotonic()
                p = m.partition()
                if m.error() is not None:
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        ends.pop(p, None)
                        continue
                    raise MeshlineError(f"replay: target {decl.name}: Kafka: {m.error().str()}")
                if p not in ends or m.offset() >= ends[p]:
                    ends.pop(p, None)
                    continue
                event, error = decoder.decode(
                    m.topic(), p, m.offset(), m.key(), m.value(), m.headers(), m.timestamp()[1]
                )
                where = f"{topic}[{p}]@{m.offset()}"
                if error is not None:
                    _LOGGER.warning("replay: %s is not a CloudEvent: %s", where, error)
                    event = CloudEvent(
                        {
                            "specversion": "1.0",
                            "id": where,
                            "source": topic,
                            "type": "dev.meshline.replay.unreadable",
                        }
                    )
                out.append(DeadLetter(event, where))
                if m.offset() + 1 >= ends[p]:
                    ends.pop(p, None)
    finally:
        consumer.close()
    return out


# --------------------------------------------------------------------------- running


def _transforms() -> tuple[Any, Any]:
    """The two small transforms a replay adds (defined here: importing this module imports no Beam)."""
    import apache_beam as beam

    class ReplaySource(beam.PTransform):
        """``PBegin`` → ``(events, no dead letters)``: one route's events, as a source override."""

        def __init__(self, events: list[CloudEvent]):
            super().__init__()
            self._events = events

        def expand(self, pbegin: Any) -> Any:
            events = pbegin | "Events" >> beam.Create(self._events, reshuffle=False).with_output_types(
                CloudEvent
            )
            none = pbegin | "NoDecodeFailures" >> beam.Create([]).with_output_types(CloudEvent)
            return events, none

    class Restamped(beam.PTransform):
        """A target's transform whose delivery failures name the file's triggers into it."""

        def __init__(self, inner: Any, feeding: str):
            super().__init__()
            self._inner = inner
            self._feeding = feeding

        def expand(self, events: Any) -> Any:
            dead = events | "Write" >> self._inner
            if dead is None:
                return None
            feeding = self._feeding
            return dead | "Triggers" >> beam.Map(
                lambda e: (
                    e.replace(meshlinetrigger=feeding) if e.get("meshlineerrorstage") == "deliver" else e
                )
            ).with_output_types(CloudEvent)

    return ReplaySource, Restamped


def run_replay(integration: Integration, planned: Sequence[Planned], outcome: Outcome) -> dict[str, int]:
    """Send the replayable ones through the replay model on the direct runner; its counters.

    ``outcome`` gets ``replayed``, ``delivered``, ``dead_lettered``, ``filtered_out`` and ``lost``.
    """
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    import meshline.coder  # noqa: F401  (registers the CloudEvent coder)

    # The compiler's own choices for a target (its retry policy, its dead-letter target), so an
    # overridden target is built exactly as build_pipeline would build it.
    from meshline.compiler.build import _build_component, _common, build_pipeline
    from meshline.compiler.summary import collect_counters
    from meshline.runners import RunnerSettings, make_runner
    from meshline.spec.resolve import resolve

    by_source: dict[str, list[CloudEvent]] = {}
    routes: dict[str, Route] = {}
    for p in planned:
        if p.event is not None:
            by_source.setdefault(p.route.source, []).append(p.event)
            routes[p.route.source] = p.route
    outcome.replayed = sum(len(v) for v in by_source.values())
    if not by_source:
        return {}
    replay_source, restamped = _transforms()
    model, feeding = replay_model(integration, routes.values())
    resolved = resolve(model)
    options: dict[str, Any] = {"runner": "direct"}
    target_overrides = {}
    for target, names in feeding.items():
        dl = _common(
            [t.delivery.dead_letter for t in model.triggers if t.target == target], model.dead_letter
        )
        inner = _build_component("target", resolved.target(target), resolved, options, dead_letter=dl)
        target_overrides[target] = restamped(inner, names)
    runner, runner_args = make_runner(RunnerSettings(name="direct"))
    pipeline = beam.Pipeline(runner=runner, options=PipelineOptions(runner_args, job_name=integration.name))
    build_pipeline(
        resolved,
        pipeline,
        source_overrides={name: replay_source(events) for name, events in by_source.items()},
        target_overrides=target_overrides,
        options=options,
    )
    result = pipeline.run()
    result.wait_until_finish()
    counters = collect_counters(result)
    count_outcome(outcome, model, integration, counters)
    return counters


# --------------------------------------------------------------------------- the command


def replay_command(args: Any) -> int:
    """``meshline replay FILE --from TARGET``: dead letters through the integration again (delivery.md)."""
    import json

    from meshline.loading import load, params
    from meshline.run import say
    from meshline.secrets import mask

    where = None
    if args.where is not None:
        from meshline.transforms.cesql import CesqlParseError, compile_cesql

        try:
            where = compile_cesql(args.where)
        except CesqlParseError as e:
            raise UsageError(f"--where: {e}") from None
    result = load(args.file, params(args.param), read_secrets=True)
    for w in result.warnings:
        say(str(w), level="warning")
    owners = [i for i in result.integrations if any(t.name == args.from_target for t in i.targets)]
    if len(owners) != 1:
        names = ", ".join(sorted({t.name for i in result.integrations for t in i.targets})) or "none"
        if owners:
            raise UsageError(
                f"--from: several integrations in {args.file} have a target {args.from_target!r}"
            )
        raise UsageError(f"--from: no target named {args.from_target!r} in {args.file} (targets: {names})")
    integration = owners[0]

    def shown(text: str) -> str:
        return mask(integration.redactor.redact(text))

    outcome = Outcome()
    outcome.read, planned = plan_replay(read_dead_letters(integration, args.from_target), integration, where)
    outcome.selected = len(planned)
    for p in planned:
        if not p.route.replayable:
            outcome.not_replayable += 1
            outcome.reasons[shown(p.route.reason)] = outcome.reasons.get(shown(p.route.reason), 0) + 1
    if args.dry_run:
        for p in planned:
            line = json.dumps(describe_json(p), ensure_ascii=False, default=str)
            print(shown(line if args.format == "json" else describe(p)))
        sending = outcome.selected - outcome.not_replayable
        summary = (
            f"{integration.name}: dry run: {outcome.read} read, {outcome.selected} selected, "
            f"{sending} would be replayed, {outcome.not_replayable} not replayable; nothing was sent"
        )
        say(summary, read=outcome.read, selected=outcome.selected, replayable=sending)
        return 0
    for reason, n in sorted(outcome.reasons.items()):
        say(f"{integration.name}: {n} not replayable: {reason}", level="warning")
    say(f"replaying dead letters of {args.from_target} through {integration.name} on direct ...")
    run_replay(integration, planned, outcome)
    say(f"{integration.name}: {outcome.line()}", **outcome.as_json())
    if args.format == "json":
        print(json.dumps(outcome.as_json(), ensure_ascii=False, default=str), flush=True)
    return 0 if outcome.ok else 1
