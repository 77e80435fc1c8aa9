"""``http`` target: POST each event to a URL (CloudEvents HTTP binding).

Modes: ``binary`` (default; ``ce-*`` headers, data as body), ``structured``
(``application/cloudevents+json``) or ``batch`` (``application/cloudevents-batch+json``,
``batch_size`` events per request). Delivery follows SPEC §5: a 2xx reply is
delivered; 408, 429, 5xx, connection errors and timeouts are retried per the
trigger's ``delivery`` (honouring ``Retry-After``); any other status is
dead-lettered at once with the status and a bounded excerpt of the reply body.

Up to ``concurrency`` requests are in flight per bundle (a thread pool); all of
them are awaited in ``finish_bundle``, so an acknowledging source acknowledges
only after every event of its bundle was delivered or dead-lettered.
"""

from __future__ import annotations

import logging
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Literal

import apache_beam as beam
from apache_beam.utils.windowed_value import WindowedValue

from meshline.config import Duration, doc
from meshline.connectors.delivery import RetryPolicy, reason
from meshline.connectors.http.client import auth_headers, pool, send
from meshline.errors import EventError
from meshline.events import BATCH_CT, CloudEvent, dead_letter, to_http_binary, to_http_structured, to_json
from meshline.registry import BuildContext, Component

__all__ = ["TARGET", "HttpTargetConfig", "WriteToHttp"]

_LOGGER = logging.getLogger(__name__)


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
        "extra request headers (those named like a credential, e.g. Authorization, are secret)",
        {},
        secret="keys",
    )
    username: str | None = doc("basic auth user name", None)
    password: str | None = doc("basic auth password (secret)", None, secret=True)
    token: str | None = doc("bearer token (secret); wins over basic auth", None, secret=True)
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


def encode_request(events: list[CloudEvent], mode: str) -> tuple[dict[str, str], bytes]:
    """Headers and body for one request carrying ``events`` (one, unless mode is batch)."""
    if mode == "batch":
        body = b"[" + b",".join([to_json(e) for e in events]) + b"]"
        return {"content-type": BATCH_CT}, body
    (event,) = events
    if mode == "structured":
        return to_http_structured(event)
    return to_http_binary(event)


class _HttpWriteFn(beam.DoFn):
    def __init__(self, config: HttpTargetConfig, policy: RetryPolicy, target: str):
        self._config = config
        self._policy = policy
        self._target = target
        self._delivered = beam.metrics.Metrics.counter("meshline", f"target.{target}.delivered")
        self._retried = beam.metrics.Metrics.counter("meshline", f"target.{target}.retried")

    def setup(self):
        c = self._config
        self._http = pool(maxsize=c.concurrency, verify=c.verify_tls)
        self._static = {**{k.lower(): v for k, v in c.headers.items()}}
        self._static.update(auth_headers(c.username, c.password, c.token))
        self._executor = ThreadPoolExecutor(c.concurrency, thread_name_prefix=f"http-{self._target}")

    def teardown(self):
        ex = getattr(self, "_executor", None)
        if ex is not None:
            ex.shutdown(wait=True)

    def start_bundle(self):
        self._inflight: dict[Future, list[tuple[CloudEvent, Any, Any]]] = {}
        self._batch: list[tuple[CloudEvent, Any, Any]] = []
        self._n_ok = 0

    # One request (with retries) in a worker thread: None when delivered, else the reason.
    def _deliver(self, events: list[CloudEvent]) -> str | None:
        c = self._config
        try:
            headers, body = encode_request(events, c.mode)
        except (EventError, TypeError, ValueError) as e:  # an event no binding can carry
            return str(e) if isinstance(e, EventError) else reason(e)
        headers = {**headers, **self._static}

        def once():
            return send(self._http, c.method, c.url, headers, body, float(c.timeout))

        def on_retry(_e: BaseException) -> None:
            self._retried.inc()

        try:
            self._policy.call(once, on_retry=on_retry)
        except Exception as e:
            return reason(e)
        return None

    def process(self, event: CloudEvent, timestamp=beam.DoFn.TimestampParam, window=beam.DoFn.WindowParam):
        item = (event, timestamp, window)
        if self._config.mode == "batch":
            self._batch.append(item)
            if len(self._batch) < self._config.batch_size:
                return
            items, self._batch = self._batch, []
        else:
            items = [item]
        yield from self._drain(self._config.concurrency - 1)
        fut = self._executor.submit(self._deliver, [i[0] for i in items])
        self._inflight[fut] = items

    def _drain(self, keep: int):
        """Wait until at most ``keep`` requests are in flight; yield dead letters of finished ones."""
        while len(self._inflight) > keep:
            done, _ = wait(list(self._inflight), return_when=FIRST_COMPLETED)
            for fut in done:
                items = self._inflight.pop(fut)
                why = fut.result()
                if why is None:
                    self._n_ok += len(items)
                    continue
                for event, ts, win in items:
                    yield WindowedValue(dead_letter(event, why, "deliver"), ts, (win,))

    def finish_bundle(self):
        if self._batch:
            items, self._batch = self._batch, []
            self._inflight[self._executor.submit(self._deliver, [i[0] for i in items])] = items
        yield from self._drain(0)
        if self._n_ok:
            self._delivered.inc(self._n_ok)


class WriteToHttp(beam.PTransform):
    """Events → dead letters (stage ``deliver``) of the events the endpoint finally refused."""

    def __init__(
        self, config: HttpTargetConfig, *, target_name: str = "http", policy: RetryPolicy | None = None
    ):
        super().__init__()
        self._fn = _HttpWriteFn(config, policy or RetryPolicy(), target_name)

    def expand(self, events):
        return events | "Post" >> beam.ParDo(self._fn).with_output_types(CloudEvent)


def build(config: HttpTargetConfig, ctx: BuildContext) -> WriteToHttp:
    return WriteToHttp(config, target_name=ctx.name, policy=ctx.delivery)


TARGET = Component(
    id="http",
    kind="target",
    config=HttpTargetConfig,
    build=build,
    description="POST events to an HTTP endpoint (CloudEvents binary, structured or batch mode).",
)
