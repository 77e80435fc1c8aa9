"""The registry of component ids: sources, targets and transformations.

Each id maps to ``module:attribute`` naming a :class:`Component`. Modules are
imported only when the id is looked up, and the module named here holds only
the config dataclass and the declaration: it imports neither Apache Beam nor a
client library (boto3, confluent-kafka …). ``build`` imports the Beam transform
when a pipeline is built. So ``meshline validate``, ``schema`` and
``connectors`` answer in a fraction of a second (a unit test checks that no
declaration module imports Beam).

A component declares its config dataclass (see :mod:`meshline.config`) and a
``build`` callable. What is secret in a config is said once, by the marks on its
fields (``doc(..., secret=...)``); registering the component gives the config
class a ``repr`` that masks them (:func:`meshline.config.mask_repr`).

- source: ``build(config, ctx) -> PTransform`` from ``PBegin`` to a pair
  ``(events, dead_letters)`` of ``PCollection[CloudEvent]`` (dead letters carry
  stage ``decode``);
- target: ``build(config, ctx) -> PTransform`` from ``PCollection[CloudEvent]``
  to ``PCollection[CloudEvent]`` of dead letters (stage ``deliver``);
- transformation: ``build(config, ctx) -> Callable[[CloudEvent], CloudEvent |
  list[CloudEvent] | None]``, a pure element function the compiler fuses into
  the trigger's chain.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from meshline.config import SecretMark, config_schema, mask_repr, secret_marks

__all__ = ["BuildContext", "Component", "Kind", "ids", "lookup", "planned_ids"]

Kind = Literal["source", "target", "transformation"]


@dataclass(frozen=True, kw_only=True)
class BuildContext:
    """What a component may know about where it is built."""

    integration: str
    name: str  # the component's name in the integration file
    streaming: bool = False
    runner: str = "direct"
    options: dict[str, Any] = field(default_factory=dict)
    # targets: the retry policy of the triggers feeding it (meshline.connectors.delivery.RetryPolicy)
    delivery: Any = None
    # targets: the dead-letter target its delivery failures reach; None when there is none,
    # and then a target that cannot write at all should fail the bundle (so an acknowledging
    # source redelivers) rather than drop what it could not write
    dead_letter: str | None = None
    # targets: some source of the integration is unbounded and may redeliver messages after a
    # crash (SQS, Kafka, Pub/Sub …), grouped differently from the first delivery
    redelivering: bool = False
    # the integration file's directory (None: text not read from a file): a python step's
    # function is imported from there first
    directory: str | None = None


@dataclass(frozen=True, kw_only=True)
class Component:
    id: str
    kind: Kind
    config: type
    build: Callable[..., Any]
    description: str
    # sources: whether the source never ends by itself (the run is a streaming one): True or
    # False for the type, or a function of the source's config mapping when the config decides
    # (generate: a rate without a count). meshline.spec.resolve asks is_unbounded() of every source.
    unbounded: bool | Callable[[Mapping[str, Any]], bool] = False
    # unbounded sources: what the runner had not committed comes again after a crash, grouped
    # differently (queues, Kafka, Pub/Sub, the webhook's client retrying): object targets keep a
    # ledger for it (see meshline.connectors.ledger). False for a generator.
    redelivers: bool = True
    # transformations: build returns an object with __call__(event) AND batch(events) (one result
    # per event, in order; see meshline.transforms.results.BatchResult) and an int attribute
    # batch_size (events the router buffers before calling batch(); <= 1: called one by one)
    batched: bool = False
    # targets: the transform also takes meshline.events.EventBatch elements (events sharing one
    # timestamp and window) and treats each of their events as if it had come alone
    batches: bool = False
    # what `meshline run` checks before the pipeline starts, on the parsed config: one
    # (config key, message) per problem, reported at that key (a file source whose path
    # matches no file); not run by validate or test, whose files need not exist yet
    preflight: Callable[[Any], list[tuple[str, str]]] | None = None
    # what the loader checks beyond the config's own rules, given the integration file's
    # directory (None for text): one (config key, message) per problem (a python step's
    # function must be importable from there); run by validate, test and run alike
    check: Callable[[Any, str | None], list[tuple[str, str]]] | None = None

    def __post_init__(self) -> None:
        # the config's repr masks what its secret marks name, plain strings included
        mask_repr(self.config)

    @property
    def secret_marks(self) -> dict[str, SecretMark]:
        """The config fields holding credentials and how (derived from the config's field marks)."""
        return secret_marks(self.config)

    def is_unbounded(self, config: Mapping[str, Any] | None) -> bool:
        """Whether a source of this type with ``config`` (the mapping as written) is unbounded."""
        if callable(self.unbounded):
            return bool(self.unbounded(config if isinstance(config, Mapping) else {}))
        return self.unbounded

    def schema(self) -> dict[str, Any]:
        s = config_schema(self.config)
        s["title"] = f"{self.kind} {self.id}"
        s["description"] = self.description
        return s


_REGISTRY: dict[Kind, dict[str, str]] = {
    "source": {
        "file": "meshline.connectors.file_config:SOURCE",
        "generate": "meshline.connectors.generate_config:SOURCE",
        "google.pubsub": "meshline.connectors.pubsub:SOURCE",
        "kafka": "meshline.connectors.kafka.source:SOURCE",
        "azure.eventhubs": "meshline.connectors.azure.eventhubs:SOURCE",
        "azure.activitylogs": "meshline.connectors.azure.activitylogs:SOURCE",
        "google.storage": "meshline.connectors.gcs.source:SOURCE",
        "http": "meshline.connectors.http.source_config:SOURCE",
        "amqp": "meshline.connectors.amqp.source:SOURCE",
        "aws.sqs": "meshline.connectors.aws.sqs:SOURCE",
        "aws.s3": "meshline.connectors.aws.s3_source:SOURCE",
    },
    "target": {
        "file": "meshline.connectors.file_config:TARGET",
        "log": "meshline.connectors.log_config:TARGET",
        "azure.datalake": "meshline.connectors.azure.datalake:TARGET",
        "google.storage": "meshline.connectors.gcs.target:TARGET",
        "kafka": "meshline.connectors.kafka.target_config:TARGET",
        "http": "meshline.connectors.http.target_config:TARGET",
        "amqp": "meshline.connectors.amqp.target_config:TARGET",
        "elasticsearch": "meshline.connectors.elasticsearch_config:TARGET",
        "snowflake": "meshline.connectors.snowflake_config:TARGET",
        "aws.sqs": "meshline.connectors.aws.sqs_target_config:TARGET",
        "aws.s3": "meshline.connectors.aws.s3_target_config:TARGET",
    },
    "transformation": {
        "jq": "meshline.transforms.steps:JQ",
        "mapping": "meshline.transforms.steps:MAPPING",
        "python": "meshline.transforms.steps:PYTHON",
        "http": "meshline.transforms.http:HTTP",
        "xml2json": "meshline.transforms.xml:XML2JSON",
        "xslt": "meshline.transforms.xml:XSLT",
    },
}

# Ids the contract names that this build does not implement yet (SPEC §4, §7):
# validation says "not available in this version" instead of "unknown".
_PLANNED: dict[Kind, tuple[str, ...]] = {
    "source": (
        "aws.sqs",
        "aws.s3",
        "google.storage",
        "google.pubsub",
        "azure.activitylogs",
        "azure.eventhubs",
        "kafka",
        "amqp",
        "http",
    ),
    "target": (
        "http",
        "aws.s3",
        "aws.sqs",
        "kafka",
        "elasticsearch",
        "azure.datalake",
        "google.storage",
        "snowflake",
        "amqp",
    ),
    "transformation": ("http", "xslt", "xml2json"),
}


def ids(kind: Kind) -> list[str]:
    """The ids available for ``kind``, sorted."""
    return sorted(_REGISTRY[kind])


def planned_ids(kind: Kind) -> list[str]:
    return [i for i in _PLANNED[kind] if i not in _REGISTRY[kind]]


def lookup(kind: Kind, type_id: str) -> Component | None:
    """The component for ``type_id``, or ``None`` when there is none."""
    ref = _REGISTRY[kind].get(type_id)
    if ref is None:
        return None
    module, _, attr = ref.partition(":")
    component = getattr(importlib.import_module(module), attr)
    assert isinstance(component, Component), ref
    return component
