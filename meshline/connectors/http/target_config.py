"""``http`` target: config and declaration (the Beam transform: :mod:`meshline.connectors.http.target`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from meshline.config import Duration, doc
from meshline.connectors.late import Late
from meshline.registry import Component

__all__ = ["TARGET", "HttpTargetConfig"]


@dataclass(frozen=True, kw_only=True)
class HttpTargetConfig:
    """POST events to an HTTP endpoint (a CloudEvents sink, a broker, any webhook)."""

    url: str = doc("the endpoint, e.g. http://127.0.0.1:8080/events", secret="url")
    mode: Literal["binary", "structured", "batch"] = doc(
        "CloudEvents HTTP binding mode: 'binary' (ce-* headers), 'structured' (JSON body) "
        "or 'batch' (a JSON array of events per request)",
        "binary",
    )
    method: Literal["POST", "PUT"] = doc("HTTP method", "POST")
    headers: dict[str, str] = doc(
        "extra request headers",
        {},
        secret="keys",
    )
    username: str | None = doc("basic auth user name", None)
    password: str | None = doc("basic auth password", None, secret=True)
    token: str | None = doc("bearer token; wins over basic auth", None, secret=True)
    timeout: Duration = doc("timeout of one request", Duration(30))
    concurrency: int = doc("requests in flight per worker bundle", 8)
    batch_size: int = doc("events per request in batch mode", 100)
    verify_tls: bool = doc("verify the server's TLS certificate", True)

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"url: must start with http:// or https://, got {self.url!r}")
        if not 1 <= self.concurrency <= 256:
            raise ValueError(f"concurrency: must be between 1 and 256, got {self.concurrency}")
        if not 1 <= self.batch_size <= 10000:
            raise ValueError(f"batch_size: must be between 1 and 10000, got {self.batch_size}")
        if self.password is not None and self.username is None:
            raise ValueError("password: needs username (basic auth)")


TARGET = Component(
    id="http",
    kind="target",
    config=HttpTargetConfig,
    build=Late("meshline.connectors.http.target:build"),
    description="POST events to an HTTP endpoint (CloudEvents binary, structured or batch mode).",
)
