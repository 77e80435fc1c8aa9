"""``generate`` source: a count of events, or a rate of events per second, from a template.

Every string in the template may contain ``{n}`` (the sequence number, from 0).
Missing required attributes get defaults: ``id`` ``{n}``, ``source``
``meshline://generate/NAME``, ``type`` ``dev.meshline.generated``. With ``count``
the source is bounded; with ``rate`` alone it is unbounded and paced in real
time (end it with ``max_events`` or ``idle_timeout``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import apache_beam as beam

import meshline.coder  # noqa: F401  (registers the CloudEvent coder)
from meshline.connectors.generate_config import SOURCE, GenerateConfig
from meshline.errors import EventError
from meshline.events import CloudEvent, dead_letter, from_json_dict

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
                bad = CloudEvent(
                    {
                        "specversion": "1.0",
                        "id": str(n),
                        "source": f"meshline://generate/{self._name}",
                        "type": "dev.meshline.generated",
                    },
                    d,
                )
                yield beam.pvalue.TaggedOutput("dead", dead_letter(bad, str(e), "decode", step=self._name))
            n += 1


class Generate(beam.PTransform):
    """``PBegin`` → ``(events, dead_letters)``."""

    def __init__(self, config: GenerateConfig, source_name: str = "generate"):
        super().__init__()
        self._config = config
        self._name = source_name

    def expand(self, pbegin):
        c = self._config
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
