"""``log`` target: prints each event as one line of JSON (structured CloudEvent) to stdout."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Literal

import apache_beam as beam
import orjson

from meshline.config import doc
from meshline.events import CloudEvent
from meshline.registry import Component

__all__ = ["TARGET", "LogConfig", "WriteToLog"]


@dataclass(frozen=True, kw_only=True)
class LogConfig:
    """Print events, one JSON line each, for demos and debugging."""

    format: Literal["json", "pretty"] = doc("'json': one line per event; 'pretty': indented", "json")
    prefix: str = doc("text printed before each event", "")


class _LogFn(beam.DoFn):
    def __init__(self, fmt: str, prefix: str, target: str):
        self._option = orjson.OPT_INDENT_2 if fmt == "pretty" else 0
        self._prefix = prefix.encode()
        self._delivered = beam.metrics.Metrics.counter("meshline", f"target.{target}.delivered")

    def start_bundle(self):
        self._n = 0

    def process(self, event: CloudEvent):
        out = sys.stdout.buffer
        out.write(self._prefix + orjson.dumps(event.to_dict(), option=self._option) + b"\n")
        self._n += 1
        return ()

    def finish_bundle(self):
        sys.stdout.flush()
        self._delivered.inc(self._n)


class WriteToLog(beam.PTransform):
    def __init__(self, config: LogConfig, target_name: str = "log"):
        super().__init__()
        self._config = config
        self._name = target_name

    def expand(self, events):
        return events | "Print" >> beam.ParDo(
            _LogFn(self._config.format, self._config.prefix, self._name)
        ).with_output_types(CloudEvent)


TARGET = Component(
    id="log",
    kind="target",
    config=LogConfig,
    build=lambda config, ctx: WriteToLog(config, ctx.name),
    description="Print events as JSON lines on standard output.",
)
