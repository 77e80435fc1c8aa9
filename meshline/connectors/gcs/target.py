"""``google.storage`` target: events as objects (jsonl, avro, parquet) in a Cloud Storage bucket.

Encoding, path templates, windows, roll-over and deterministic object names
come from :mod:`meshline.connectors.objects`. Objects are uploaded whole (the
client switches to a resumable upload above 8 MiB), so readers never see half
an object. Connection errors, timeouts, 429 and 5xx are retried per the
triggers' ``delivery`` (the client's own retries are off so that policy rules);
a missing bucket or denied access is permanent and dead-letters the object's
events with the server's reason.

Credentials are Google's application default credentials (environment,
``GOOGLE_APPLICATION_CREDENTIALS``, workload identity). ``endpoint_url`` points
at another endpoint; a plain ``http://`` one (an emulator such as
fake-gcs-server) is used anonymously.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from meshline.config import Duration, doc
from meshline.connectors.gcs.client import classify, storage_client
from meshline.connectors.objects import DEFAULT_MAX_BYTES, WriteObjects
from meshline.registry import BuildContext, Component

__all__ = ["TARGET", "GcsTargetConfig"]


@dataclass(frozen=True, kw_only=True)
class GcsTargetConfig:
    """Write events as objects (jsonl, avro, parquet) to a Google Cloud Storage bucket."""

    bucket: str = doc("the bucket")
    prefix: str = doc("directory of the objects; may use {yyyy}/{mm}/{dd}/{HH} and {type}", "")
    format: Literal["jsonl", "avro", "parquet"] = doc("object format", "jsonl")
    window: Duration | None = doc(
        "roll-over: one object per window and bundle, e.g. 60s (streaming: 60s)", None
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
    project: str | None = doc("the Google Cloud project for the client (default: from the credentials)", None)
    endpoint_url: str | None = doc(
        "the Cloud Storage JSON API endpoint, e.g. http://127.0.0.1:4443 for an emulator (anonymous)", None
    )
    timeout: Duration = doc("network timeout of one upload", Duration(60))

    def __post_init__(self) -> None:
        if not self.bucket.strip() or "/" in self.bucket:
            raise ValueError(f"bucket: expected a bucket name, got {self.bucket!r}")
        if self.max_events is not None and self.max_events < 1:
            raise ValueError(f"max_events: must be >= 1, got {self.max_events}")
        if self.shards < 1:
            raise ValueError(f"shards: must be >= 1, got {self.shards}")
        if self.max_bytes < 1:
            raise ValueError(f"max_bytes: must be >= 1, got {self.max_bytes}")


class _GcsStore:
    def __init__(self, config: GcsTargetConfig):
        self._client = storage_client(config.project, config.endpoint_url)
        self._bucket = self._client.bucket(config.bucket)
        self._name = config.bucket
        self._timeout = float(config.timeout)

    def put(self, key: str, data: bytes, content_type: str) -> None:
        try:
            self._bucket.blob(key).upload_from_string(
                data, content_type=content_type, retry=None, timeout=self._timeout
            )
        except Exception as e:
            raise classify(e, f"bucket {self._name!r}") from None

    def close(self) -> None:
        self._client.close()


class _MakeStore:
    """Picklable factory: the client is created on the worker."""

    def __init__(self, config: GcsTargetConfig):
        self._config = config

    def __call__(self) -> _GcsStore:
        return _GcsStore(self._config)


def build(config: GcsTargetConfig, ctx: BuildContext) -> WriteObjects:
    return WriteObjects(
        _MakeStore(config),
        prefix=config.prefix,
        format=config.format,
        target_name=ctx.name,
        window=float(config.window) if config.window else None,
        max_events=config.max_events,
        max_bytes=config.max_bytes,
        policy=ctx.delivery,
        commit=config.commit,
        shards=config.shards,
        runner=ctx.options.get("runner", "direct"),
        dead_letter=ctx.dead_letter is not None,
    )


TARGET = Component(
    id="google.storage",
    kind="target",
    config=GcsTargetConfig,
    build=build,
    description="Google Cloud Storage bucket: jsonl, avro or parquet objects per window.",
)
