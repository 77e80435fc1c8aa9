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
from typing import Any

import apache_beam as beam
from apache_beam.utils.windowed_value import WindowedValue

import meshline.coder  # noqa: F401  (registers the CloudEvent coder)
from meshline.connectors.delivery import RetryPolicy, reason
from meshline.connectors.http.client import auth_headers, encode_request, pool, send
from meshline.connectors.http.target_config import TARGET, HttpTargetConfig
from meshline.errors import EventError
from meshline.events import CloudEvent, dead_letter
from meshline.registry import BuildContext

__all__ = ["TARGET", "HttpTargetConfig", "WriteToHttp"]

_LOGGER = logging.getLogger(__name__)


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
