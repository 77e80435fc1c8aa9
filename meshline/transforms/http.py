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

Batching and concurrency (the step is ``batched``, see :mod:`meshline.compiler.batched`):
the router hands the step ``batch * concurrency`` events at a time (fewer at the
end of a bundle); :meth:`HttpStep.batch` splits them into requests of ``batch``
events and runs up to ``concurrency`` requests at once. With ``batch > 1`` a
request is one CloudEvents batch-mode POST (``application/cloudevents-batch+json``)
and its reply is read by :func:`apply_batch_reply`:

- reply events whose ``id`` is the ``id`` of an event of the request are that
  event's result (several → it split; none → it was filtered out); when two
  events of one request share an ``id``, the first one gets the replies;
- reply events with any other ``id`` are outputs of the request as a whole:
  delivered, and a later failure dead-letters that output event itself;
- ``204``/an empty body → every event of the request was filtered out;
- a JSON array with one item per event → item ``i`` is the new ``data`` of event ``i``;
- anything else, or a failed request (after retries), fails every event of the request.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

from meshline.bindings import decode_data, from_http, to_http_binary, to_http_structured
from meshline.config import Duration, doc
from meshline.connectors.delivery import RetryPolicy, reason
from meshline.connectors.http.client import Reply, auth_headers, encode_request, excerpt, pool, send
from meshline.errors import EventError, TransformError
from meshline.events import CloudEvent
from meshline.registry import BuildContext, Component
from meshline.transforms.results import BatchResult, StepResult

__all__ = ["HTTP", "HttpStep", "HttpStepConfig", "apply_batch_reply", "apply_reply"]

_JSON_CT = "application/json"


@dataclass(frozen=True, kw_only=True)
class HttpStepConfig:
    """Call an HTTP function with each event; the reply becomes the event."""

    url: str = doc("the function's URL, e.g. http://127.0.0.1:8080/", secret="url")
    timeout: Duration = doc("timeout of one call", Duration(30))
    headers: dict[str, str] = doc(
        "extra request headers",
        {},
        secret="keys",
    )
    mode: Literal["binary", "structured"] = doc(
        "how one event is sent (CloudEvents HTTP binding); with batch > 1 requests are batch mode", "binary"
    )
    username: str | None = doc("basic auth user name", None)
    password: str | None = doc("basic auth password", None, secret=True)
    token: str | None = doc("bearer token; wins over basic auth", None, secret=True)
    retries: int = doc("retries of a call that failed transiently (408, 429, 5xx, connection, timeout)", 3)
    backoff: Duration = doc("first retry delay; doubles per retry, a Retry-After header wins", Duration(0.2))
    max_backoff: Duration = doc("longest wait between retries", Duration(30))
    verify_tls: bool = doc("verify the server's TLS certificate", True)
    concurrency: int = doc("requests in flight at once (per worker)", 1)
    batch: int = doc(
        "events per request; above 1 a request is a CloudEvents batch (application/cloudevents-batch+json)",
        1,
    )

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"url: must start with http:// or https://, got {self.url!r}")
        if self.retries < 0:
            raise ValueError(f"retries: must be >= 0, got {self.retries}")
        if self.password is not None and self.username is None:
            raise ValueError("password: needs username (basic auth)")
        if not 1 <= self.concurrency <= 256:
            raise ValueError(f"concurrency: must be between 1 and 256, got {self.concurrency}")
        if not 1 <= self.batch <= 10000:
            raise ValueError(f"batch: must be between 1 and 10000, got {self.batch}")


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


def apply_batch_reply(events: list[CloudEvent], reply: Reply) -> BatchResult:
    """The results of a batch request of ``events`` given the function's 2xx ``reply``.

    Raises :class:`TransformError` when the reply fits none of the rules (then every
    event of the request fails).
    """
    n = len(events)
    try:
        replies = from_http(reply.headers, reply.body)
    except EventError as e:
        raise TransformError(f"the function replied with a broken CloudEvent: {e}") from None
    if replies is not None:
        index: dict[str, int] = {}
        for i, ev in enumerate(events):
            index.setdefault(str(ev.attributes.get("id")), i)
        per_event: list[list[CloudEvent]] = [[] for _ in events]
        extra: list[CloudEvent] = []
        for r in replies:
            i = index.get(str(r.attributes.get("id")), -1)
            if i < 0:
                extra.append(r)
            else:
                per_event[i].append(r)
        results: list[StepResult | BaseException] = [
            None if not p else p[0] if len(p) == 1 else p for p in per_event
        ]
        return BatchResult(results, extra)
    if reply.status == 204 or not reply.body:
        return BatchResult([None] * n)
    ct = reply.headers.get("content-type")
    try:
        data = decode_data(reply.body, ct)
    except EventError as e:
        raise TransformError(f"the function's reply to a batch: {e}") from None
    if not isinstance(data, list) or len(data) != n:
        what = f"a JSON array of {len(data)} items" if isinstance(data, list) else f"content type {ct!r}"
        raise TransformError(
            f"the function's reply to a batch of {n} events is neither CloudEvents nor a JSON array "
            f"of {n} items (got {what}): {excerpt(reply.body)}"
        )
    out: list[StepResult | BaseException] = []
    for ev, d in zip(events, data, strict=True):
        attrs = dict(ev.attributes)
        attrs["datacontenttype"] = _JSON_CT
        out.append(CloudEvent(attrs, d))
    return BatchResult(out)


class HttpStep:
    """The built step: ``step(event)`` for one event, ``step.batch(events)`` for many."""

    def __init__(self, config: HttpStepConfig):
        self._policy = RetryPolicy(
            retries=config.retries, delay=float(config.backoff), max=float(config.max_backoff)
        )
        static = {k.lower(): v for k, v in config.headers.items()}
        static.update(auth_headers(config.username, config.password, config.token))
        self._static = static
        self._encode = to_http_structured if config.mode == "structured" else to_http_binary
        self._url = config.url
        self._timeout = float(config.timeout)
        self._verify = config.verify_tls
        self._per_request = config.batch
        self._concurrency = config.concurrency
        # what the router buffers before calling batch(): one round of concurrent requests
        self.batch_size = config.batch * config.concurrency
        self._http: Any = None
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def _pool(self) -> Any:
        if self._http is None:  # lazily, on the worker: one keep-alive pool per process and setting
            self._http = pool(maxsize=max(10, self._concurrency), verify=self._verify)
        return self._http

    def _post(self, headers: dict[str, str], body: bytes) -> Reply:
        headers.update(self._static)
        http = self._pool()
        try:
            return self._policy.call(lambda: send(http, "POST", self._url, headers, body, self._timeout))
        except Exception as e:
            raise TransformError(f"function call failed: {reason(e)}") from None

    def __call__(self, event: CloudEvent) -> StepResult:
        headers, body = self._encode(event)
        return apply_reply(event, self._post(headers, body))

    def _request(self, events: list[CloudEvent]) -> BatchResult:
        """One request for ``events`` (never raises: a failure fails each event)."""
        try:
            if self._per_request == 1:
                (event,) = events
                return BatchResult([self(event)])
            headers, body = encode_request(events, "batch")
            return apply_batch_reply(events, self._post(headers, body))
        except Exception as e:
            return BatchResult([e] * len(events))

    def batch(self, events: list[CloudEvent]) -> BatchResult:
        """Results for ``events`` in order: requests of ``batch`` events, ``concurrency`` at once."""
        size = self._per_request
        chunks = [events[i : i + size] for i in range(0, len(events), size)]
        if len(chunks) == 1 or self._concurrency == 1:
            done = [self._request(c) for c in chunks]
        else:
            done = list(self._pool_executor().map(self._request, chunks))
        results: list[StepResult | BaseException] = []
        extra: list[CloudEvent] = []
        for r in done:
            results.extend(r.results)
            extra.extend(r.extra)
        return BatchResult(results, extra)

    def _pool_executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self._concurrency, thread_name_prefix="http-step")
            return self._executor

    def close(self) -> None:
        ex, self._executor = self._executor, None
        if ex is not None:
            ex.shutdown(wait=True)


def build_http(config: HttpStepConfig, ctx: BuildContext) -> HttpStep:
    return HttpStep(config)


HTTP = Component(
    id="http",
    kind="transformation",
    config=HttpStepConfig,
    build=build_http,
    description="Call an HTTP function (CloudEvents binary mode); its reply becomes the event, 204 drops it.",
    batched=True,
)
