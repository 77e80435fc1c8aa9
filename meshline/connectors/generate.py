"""``generate`` source: a count of events, or a rate of events per second, from a template.

Every string in the template may contain ``{n}`` (the sequence number, from 0).
Missing required attributes get defaults: ``id`` ``{n}``, ``source``
``meshline://generate/NAME``, ``type`` ``dev.meshline.generated``. With ``count``
(or ``max_events`` alone) the source is bounded; with ``rate`` and no ``count`` it
is unbounded — a streaming run, on Prism by default — paced in real time, and ends
at ``max_events`` when given. The unbounded kind reads through
:class:`~meshline.connectors.unbounded.ReadFromQueue` (a generator that needs no
acknowledgement), so its events are stamped with the time they were made and
committed bundle by bundle, like a queue's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import apache_beam as beam

import meshline.coder  # noqa: F401  (registers the CloudEvent coder)
from meshline.connectors.generate_config import SOURCE, GenerateConfig, is_unbounded
from meshline.connectors.unbounded import Message, ReadFromQueue
from meshline.errors import EventError
from meshline.events import CloudEvent, dead_letter, from_json_dict
from meshline.registry import BuildContext

__all__ = ["SOURCE", "GenerateConfig", "Generate", "render_template"]


def _compile(value: Any) -> Callable[[int], Any]:
    if isinstance(value, str):
        if "{n}" not in value:
            return lambda n: value
        parts = value.split("{n}")
        return lambda n: str(n).join(parts)
    if isinstance(value, dict):
        items = [(k, _compile(v)) for k, v in value.items()]
        return lambda n: {k: f(n) for k, f in items}
    if isinstance(value, list):
        fns = [_compile(v) for v in value]
        return lambda n: [f(n) for f in fns]
    return lambda n: value


def render_template(template: dict[str, Any], source_name: str) -> Callable[[int], dict[str, Any]]:
    """``n -> event dict`` for a template with defaults for the required attributes."""
    full = {
        "specversion": "1.0",
        "id": "{n}",
        "source": f"meshline://generate/{source_name}",
        "type": "dev.meshline.generated",
    }
    full.update(template)
    return _compile(full)


class _GenerateFn(beam.DoFn):
    def __init__(self, template: dict[str, Any], name: str, count: int | None, rate: float | None):
        self._template = template
        self._name = name
        self._count = count
        self._rate = rate

    def process(self, _):
        render = render_template(self._template, self._name)
        start = time.monotonic()
        n = 0
        while self._count is None or n < self._count:
            if self._rate:
                delay = start + n / self._rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            d = render(n)
            try:
                yield from_json_dict(d)
            except EventError as e:
                bad = _undecodable(n, self._name, d)
                yield beam.pvalue.TaggedOutput("dead", dead_letter(bad, str(e), "decode", step=self._name))
            n += 1


class _RateReader:
    """A :class:`~meshline.connectors.unbounded.QueueReader` whose "queue" makes events at a rate.

    Event ``n`` is due ``n / rate`` seconds after the first pull; ``pull`` returns the
    events due by then, waiting up to ``timeout`` for the first one. The sequence number
    lives in the source's restriction (``seek``), so a read resumed by another DoFn
    instance goes on where the last one stopped.
    """

    def __init__(self, template: dict[str, Any], name: str, rate: float):
        self._render = render_template(template, name)
        self._name = name
        self._rate = rate
        self._n = 0
        self._start: float | None = None

    def seek(self, claimed: int) -> None:
        if claimed != self._n or self._start is None:
            self._n = claimed
            self._start = time.monotonic() - claimed / self._rate  # the next one is due now

    def pull(self, max_messages: int, timeout: float) -> list[Message]:
        now = time.monotonic()
        if self._start is None:
            self._start = now
        due = self._start + self._n / self._rate
        if due > now:
            if due - now > timeout:
                time.sleep(timeout)
                return []
            time.sleep(due - now)
            now = time.monotonic()
        ready = int((now - self._start) * self._rate) + 1 - self._n
        out = []
        for _ in range(max(1, min(ready, max_messages))):
            out.append(self._message(self._n))
            self._n += 1
        return out

    def _message(self, n: int) -> Message:
        d = self._render(n)
        try:
            return Message("", from_json_dict(d), time.time())
        except EventError as e:
            return Message("", _undecodable(n, self._name, d), time.time(), error=str(e))

    def ack(self, ack_ids: Sequence[str]) -> None:
        return None  # nothing to acknowledge: a generator cannot redeliver

    def close(self) -> None:
        return None


class _MakeRateReader:
    def __init__(self, template: dict[str, Any], name: str, rate: float):
        self._args = (template, name, rate)

    def __call__(self) -> _RateReader:
        return _RateReader(*self._args)


def _undecodable(n: int, name: str, d: Any) -> CloudEvent:
    return CloudEvent(
        {
            "specversion": "1.0",
            "id": str(n),
            "source": f"meshline://generate/{name}",
            "type": "dev.meshline.generated",
        },
        d,
    )


class Generate(beam.PTransform):
    """``PBegin`` → ``(events, dead_letters)``."""

    def __init__(self, config: GenerateConfig, source_name: str = "generate"):
        super().__init__()
        self._config = config
        self._name = source_name

    def expand(self, pbegin):
        c = self._config
        if c.rate is not None and is_unbounded({"count": c.count, "rate": c.rate}):
            return pbegin | "Read" >> ReadFromQueue(
                _MakeRateReader(c.event, self._name, c.rate),
                source_name=self._name,
                max_events=c.max_events,
                batch=max(1, min(1000, int(c.rate))),  # about a second of events per bundle at most
                poll=1.0,
            )
        counts = [x for x in (c.count, c.max_events) if x is not None]
        limit = min(counts) if counts else None
        out = (
            pbegin
            | "Impulse" >> beam.Impulse()
            | "Generate"
            >> beam.ParDo(_GenerateFn(c.event, self._name, limit, c.rate))
            .with_outputs("dead", main="events")
            .with_output_types(CloudEvent)
        )
        return out.events, out.dead


def build(config: GenerateConfig, ctx: BuildContext) -> Generate:
    """The source's transform (:data:`SOURCE` names it)."""
    return Generate(config, ctx.name)
