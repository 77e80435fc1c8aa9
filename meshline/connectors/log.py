"""``log`` target: prints each event as one line of JSON (structured CloudEvent) to stdout."""

from __future__ import annotations

import sys

import apache_beam as beam
import orjson

import meshline.coder  # noqa: F401  (registers the CloudEvent coder)
from meshline.connectors.log_config import TARGET, LogConfig
from meshline.events import CloudEvent
from meshline.registry import BuildContext

__all__ = ["TARGET", "LogConfig", "WriteToLog"]


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


def build(config: LogConfig, ctx: BuildContext) -> WriteToLog:
    """The target's transform (:data:`TARGET` names it)."""
    return WriteToLog(config, ctx.name)
