"""``http`` source (webhook): config and declaration (the server: :mod:`meshline.connectors.http.source`)."""

from __future__ import annotations

import socket
from dataclasses import dataclass

from meshline.config import Duration, doc
from meshline.connectors.late import Late
from meshline.registry import Component

__all__ = ["REQUEST_TYPE", "SOURCE", "HttpSourceConfig"]

REQUEST_TYPE = "dev.meshline.http.request"


@dataclass(frozen=True, kw_only=True)
class HttpSourceConfig:
    """Receive events over HTTP (a webhook); a 2xx reply means the events were committed."""

    port: int = doc("TCP port to listen on")
    path: str = doc("URL path events are POSTed to", "/")
    host: str = doc("bind address; 0.0.0.0 accepts requests from other machines", "127.0.0.1")
    username: str | None = doc("require basic auth with this user name", None)
    password: str | None = doc("basic auth password", None, secret=True)
    token: str | None = doc("require 'Authorization: Bearer TOKEN'", None, secret=True)
    max_body_bytes: int = doc("larger requests get 413", 1048576)
    ack_timeout: Duration = doc(
        "how long a request waits for its events to be committed before it gets 503", Duration(30)
    )
    type: str = doc("event type of requests that are not CloudEvents", REQUEST_TYPE)
    max_events: int | None = doc("end the source after this many events (0: never)", None)
    idle_timeout: Duration | None = doc(
        "end the source after this long without a request, e.g. 30s (0: never)", None
    )
    batch: int = doc("events per bundle at most", 1000)
    header_timeout: Duration = doc(
        "a request's head must arrive within this long of the connection (on a kept-alive "
        "connection: of its first byte), else 408 and the connection is closed",
        Duration(10),
    )
    body_timeout: Duration = doc(
        "a request's body must arrive within this long of its head, else 408", Duration(30)
    )
    keepalive_timeout: Duration = doc("an idle kept-alive connection is closed after this long", Duration(30))
    max_connections: int = doc(
        "open connections at most; beyond it a new one replaces the longest-idle one", 4096
    )
    max_in_flight: int = doc("requests being read or waiting for their commit at most; beyond it 503", 1024)
    allowed_origins: list[str] = doc(
        "origins the CloudEvents webhook handshake (OPTIONS with WebHook-Request-Origin) grants, "
        "e.g. eventgrid.azure.net; none by default",
        [],
    )

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65535:
            raise ValueError(f"port: must be between 1 and 65535, got {self.port}")
        if not self.path.startswith("/"):
            raise ValueError(f"path: must start with '/', got {self.path!r}")
        if self.password is not None and self.username is None:
            raise ValueError("password: needs username (basic auth)")
        if self.max_body_bytes < 1:
            raise ValueError(f"max_body_bytes: must be >= 1, got {self.max_body_bytes}")
        if self.max_events is not None and self.max_events < 0:
            raise ValueError(f"max_events: must be >= 0, got {self.max_events}")
        if not 1 <= self.batch <= 10000:
            raise ValueError(f"batch: must be between 1 and 10000, got {self.batch}")
        for key in ("header_timeout", "body_timeout", "keepalive_timeout"):
            if not getattr(self, key) > 0:
                raise ValueError(f"{key}: must be more than 0, got {getattr(self, key)}")
        if self.max_connections < 1:
            raise ValueError(f"max_connections: must be >= 1, got {self.max_connections}")
        if self.max_in_flight < 1:
            raise ValueError(f"max_in_flight: must be >= 1, got {self.max_in_flight}")
        for origin in self.allowed_origins:
            if not origin.strip() or "*" in origin:
                raise ValueError(f"allowed_origins: name each origin (no wildcard), got {origin!r}")

    @property
    def source_uri(self) -> str:
        host = self.host
        if host in ("0.0.0.0", "::", ""):
            host = socket.gethostname()
        return f"http://{host}:{self.port}{self.path}"


SOURCE = Component(
    id="http",
    kind="source",
    config=HttpSourceConfig,
    build=Late("meshline.connectors.http.source:build"),
    description="Webhook: receives CloudEvents and JSON posts; answers 202 once the events are committed.",
    unbounded=True,
)
