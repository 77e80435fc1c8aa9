"""``http`` transformation: call a serverless function with the event (SPEC §4).

The event is POSTed in CloudEvents HTTP binary mode (``structured`` on request).
The reply decides the result:

- a CloudEvent (binary, structured, or a batch of them) → that event (those events);
- any other 2xx body → the input event with ``data`` replaced by the body
  (JSON when the content type says so or it parses, text for ``text/*``, else
  bytes) and ``datacontenttype`` set from the reply; the other attributes stay;
- ``204 No Content`` or an empty body without ``ce-*`` headers → the event is
  dropped (the function filtered it out);
- 408/429/5xx, connection errors and timeouts → retried (``retries``, exponential
  backoff from ``backoff``, honouring ``Retry-After``), then the step fails;
- any other status → the step fails at once.

A step that fails dead-letters the input event with stage ``transform`` and the
reason (status and a bounded excerpt of the reply). Requests share one
keep-alive ``urllib3.PoolManager`` per worker process.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from meshline.config import Duration, doc
from meshline.connectors.delivery import RetryPolicy, reason
from meshline.connectors.http.client import Reply, auth_headers, pool, send
from meshline.errors import EventError, TransformError
from meshline.events import CloudEvent, decode_data, from_http, to_http_binary, to_http_structured
from meshline.registry import BuildContext, Component

__all__ = ["HTTP", "HttpStepConfig", "apply_reply"]


@dataclass(frozen=True, kw_only=True)
class HttpStepConfig:
    """Call an HTTP function with each event; the reply becomes the event."""

    url: str = doc("the function's URL, e.g. http://127.0.0.1:8080/")
    timeout: Duration = doc("timeout of one call", Duration(30))
    headers: dict[str, str] = doc("extra request headers", {})
    mode: Literal["binary", "structured"] = doc("how the event is sent (CloudEvents HTTP binding)", "binary")
    username: str | None = doc("basic auth user name", None)
    password: str | None = doc("basic auth password (secret)", None, metadata={"secret": True})
    token: str | None = doc("bearer token (secret); wins over basic auth", None, metadata={"secret": True})
    retries: int = doc("retries of a call that failed transiently (408, 429, 5xx, connection, timeout)", 3)
    backoff: Duration = doc("first retry delay; doubles per retry, a Retry-After header wins", Duration(0.2))
    max_backoff: Duration = doc("longest wait between retries", Duration(30))
    verify_tls: bool = doc("verify the server's TLS certificate", True)

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"url: must start with http:// or https://, got {self.url!r}")
        if self.retries < 0:
            raise ValueError(f"retries: must be >= 0, got {self.retries}")
        if self.password is not None and self.username is None:
            raise ValueError("password: needs username (basic auth)")


def apply_reply(event: CloudEvent, reply: Reply) -> CloudEvent | list[CloudEvent] | None:
    """The step's result for ``event`` given the function's 2xx ``reply``."""
    h = reply.headers
    body = reply.body
    try:
        events = from_http(h, body)
    except EventError as e:
        raise TransformError(f"the function replied with a broken CloudEvent: {e}") from None
    if events is not None:
        if len(events) == 1:
            return events[0]
        return events
    if reply.status == 204 or not body:
        return None
    ct = h.get("content-type")
    try:
        data = decode_data(body, ct)
    except EventError as e:
        raise TransformError(f"the function's reply: {e}") from None
    attrs = dict(event.attributes)
    if ct:
        attrs["datacontenttype"] = ct
    else:
        attrs.pop("datacontenttype", None)
    return CloudEvent(attrs, data)


def build_http(config: HttpStepConfig, ctx: BuildContext) -> Any:
    policy = RetryPolicy(retries=config.retries, delay=float(config.backoff), max=float(config.max_backoff))
    static = {k.lower(): v for k, v in config.headers.items()}
    static.update(auth_headers(config.username, config.password, config.token))
    encode = to_http_structured if config.mode == "structured" else to_http_binary
    url = config.url
    timeout = float(config.timeout)
    verify = config.verify_tls
    state: dict[str, Any] = {}

    def http_step(event: CloudEvent) -> CloudEvent | list[CloudEvent] | None:
        http = state.get("pool")
        if http is None:  # lazily, on the worker: one keep-alive pool per process
            http = state["pool"] = pool(maxsize=10, verify=verify)
        headers, body = encode(event)
        headers.update(static)
        try:
            reply = policy.call(lambda: send(http, "POST", url, headers, body, timeout))
        except Exception as e:
            raise TransformError(f"function call failed: {reason(e)}") from None
        return apply_reply(event, reply)

    return http_step


HTTP = Component(
    id="http",
    kind="transformation",
    config=HttpStepConfig,
    build=build_http,
    description="Call an HTTP function (CloudEvents binary mode); its reply becomes the event, 204 drops it.",
    secret_keys=("password", "token"),
)
