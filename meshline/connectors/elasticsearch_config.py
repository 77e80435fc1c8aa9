"""``elasticsearch`` target: config and declaration (Beam: :mod:`meshline.connectors.elasticsearch`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from meshline.config import Duration, doc
from meshline.connectors.late import Late
from meshline.registry import Component

__all__ = ["TARGET", "ElasticsearchConfig"]

# Characters Elasticsearch and OpenSearch forbid in index names (besides upper case).
_BAD_INDEX = re.compile(r'[\\/*?"<>| ,#:]')


@dataclass(frozen=True, kw_only=True)
class ElasticsearchConfig:
    """Index events into Elasticsearch 8/9 or OpenSearch 2 with the _bulk API."""

    hosts: list[str] = doc(
        "node URLs, tried in turn, e.g. [http://127.0.0.1:9200]; user:password@ in a URL is its basic auth",
        secret="url",
    )
    index: str = doc(
        "index, alias or data stream; may use {type} and {yyyy} {mm} {dd} {HH} (from the event time)"
    )
    flavor: Literal["auto", "elasticsearch", "opensearch"] = doc(
        "server kind: detected from GET / (version.distribution) when 'auto'", "auto"
    )
    op_type: Literal["index", "create"] = doc(
        "'index' (create or overwrite by _id) or 'create' (required by data streams; an existing _id "
        "counts as delivered)",
        "index",
    )
    document: Literal["data", "event"] = doc(
        "'data': the document is the event data (non-object data is wrapped as {\"data\": …}); "
        "'event': the whole structured CloudEvent",
        "data",
    )
    timestamp_field: str | None = doc(
        "add the event time (or the time of writing) under this field when the document lacks it, "
        "e.g. '@timestamp' for data streams",
        None,
    )
    pipeline: str | None = doc("ingest pipeline to run on every document", None)
    username: str | None = doc("basic auth user name", None)
    password: str | None = doc("basic auth password", None, secret=True)
    api_key: str | None = doc("Elasticsearch API key: the encoded key, or 'id:api_key'", None, secret=True)
    ca_certs: str | None = doc("PEM file of the CA that signed the server's certificate", None, path=True)
    verify: bool = doc("verify the server's TLS certificate", True)
    batch_size: int = doc("documents per _bulk request", 1000)
    batch_bytes: int = doc("flush before a _bulk body grows past this many bytes", 5 * 1024 * 1024)
    flush_interval: Duration = doc("flush a partial batch this long after its first document", Duration(1))
    timeout: Duration = doc("timeout of one _bulk request", Duration(60))

    def __post_init__(self) -> None:
        if not self.hosts:
            raise ValueError("hosts: must name at least one node URL")
        for h in self.hosts:
            if not h.startswith(("http://", "https://")):
                raise ValueError(f"hosts: each must start with http:// or https://, got {h!r}")
        fixed = re.sub(r"\{(yyyy|mm|dd|HH|type)\}", "", self.index)
        if not self.index or self.index.startswith(("-", "_", "+")) or _BAD_INDEX.search(fixed):
            raise ValueError(
                f'index: must be a valid index name (no \\ / * ? " < > | space , # :, '
                f"not starting with - _ +), got {self.index!r}"
            )
        if fixed != fixed.lower():
            raise ValueError(f"index: must be lower case, got {self.index!r}")
        # empty strings (an unset ${params.x}) mean "not given"
        if self.password and not self.username:
            raise ValueError("password: needs username (basic auth)")
        if self.api_key and self.username:
            raise ValueError("api_key: use either api_key or username/password, not both")
        if self.api_key and self.flavor == "opensearch":
            raise ValueError("api_key: OpenSearch has no API keys; use username/password")
        if not 1 <= self.batch_size <= 100_000:
            raise ValueError(f"batch_size: must be between 1 and 100000, got {self.batch_size}")
        if self.batch_bytes < 1024:
            raise ValueError(f"batch_bytes: must be at least 1024, got {self.batch_bytes}")


TARGET = Component(
    id="elasticsearch",
    kind="target",
    config=ElasticsearchConfig,
    build=Late("meshline.connectors.elasticsearch:build"),
    description="Index events into Elasticsearch or OpenSearch with _bulk (idempotent _id from source+id).",
)
