"""The config keys every object-store target shares (``file``, ``aws.s3``, ``azure.datalake``,
``google.storage``); :mod:`meshline.connectors.objects` writes the objects.

Apart from the writer so that the targets' configs import neither Beam nor a
client library.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from meshline.config import Duration, doc

__all__ = ["DEFAULT_DEDUPE_WINDOW", "DEFAULT_MAX_BYTES", "DEFAULT_STREAMING_WINDOW", "ObjectTargetFields"]

DEFAULT_STREAMING_WINDOW = 60.0
DEFAULT_MAX_BYTES = 64 * 1024 * 1024  # an object's events are held in memory until it is written
DEFAULT_DEDUPE_WINDOW = 120.0


@dataclass(frozen=True, kw_only=True)
class ObjectTargetFields:
    """The keys of every object-store target: ``file``, ``aws.s3``, ``azure.datalake``, ``google.storage``."""

    format: Literal["jsonl", "avro", "parquet"] = doc("object format", "jsonl")
    window: Duration | None = doc(
        "roll-over: objects per time window, e.g. 60s (streaming default: 60s)", None
    )
    max_events: int | None = doc("roll over to a new object after this many events", None)
    max_bytes: int = doc("roll over to a new object at about this size", DEFAULT_MAX_BYTES)
    commit: Literal["auto", "bundle", "window"] = doc(
        "'bundle': objects written before the bundle commits (at least once on every runner); "
        "'window': one object per window and shard, written when the window closes (needs a runner "
        "with durable checkpoints); 'auto': window on flink/dataflow, else bundle",
        "auto",
    )
    shards: int = doc("objects per window and directory with commit: window", 1)
    dedupe_window: Duration = doc(
        "commit: bundle with a source that redelivers after a crash (queues, Kafka): events stored by "
        "objects written this long before the last write of an earlier run are not written again "
        "(a ledger under .meshline/ in the prefix); 0 turns it off",
        Duration(DEFAULT_DEDUPE_WINDOW),
    )

    def _check_object_fields(self) -> None:
        if self.max_events is not None and self.max_events < 1:
            raise ValueError(f"max_events: must be >= 1, got {self.max_events}")
        if self.max_bytes < 1:
            raise ValueError(f"max_bytes: must be >= 1, got {self.max_bytes}")
        if self.shards < 1:
            raise ValueError(f"shards: must be >= 1, got {self.shards}")
