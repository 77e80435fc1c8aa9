"""B1 baselines doing the same work as bench/b1.yaml: a plain Python loop and a naive Beam pipeline.

Run as ``python -m bench.baselines loop|beam INPUT OUTPUT``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import orjson

TYPE = "com.example.order.created"


def transform(d: dict) -> dict:
    data = dict(d["data"])
    data["total"] = data["amount"] * data["quantity"]
    data["status"] = "big"
    out = dict(d)
    out["data"] = data
    return out


def keep(d: dict) -> bool:
    return d.get("type") == TYPE and d["data"]["amount"] > 100


def run_loop(src: str, dst: str) -> None:
    Path(dst).mkdir(parents=True, exist_ok=True)
    loads, dumps = orjson.loads, orjson.dumps
    with open(src, "rb") as fin, open(Path(dst) / "part-00000.jsonl", "wb") as fout:
        for line in fin:
            d = loads(line)
            if keep(d):
                fout.write(dumps(transform(d)) + b"\n")


def run_beam(src: str, dst: str) -> None:
    import apache_beam as beam
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    with beam.Pipeline(runner=FnApiRunner()) as p:
        (
            p
            | beam.io.ReadFromText(src)
            | "Parse" >> beam.Map(orjson.loads)
            | "Filter" >> beam.Filter(keep)
            | "Transform" >> beam.Map(transform)
            | "Encode" >> beam.Map(lambda d: orjson.dumps(d).decode())
            | beam.io.WriteToText(str(Path(dst) / "part"), file_name_suffix=".jsonl")
        )


def run_beam_jq(src: str, dst: str) -> None:
    """The naive pipeline with the same jq programs as b1.yaml, through jq.py (libjq)."""
    import apache_beam as beam
    import jq
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    flt = ".data.amount > 100"
    prog = '.data.total = (.data.amount * .data.quantity) | .data.status = "big"'

    class JqFilter(beam.DoFn):
        def setup(self):
            self.f = jq.compile(flt)

        def process(self, d):
            if d.get("type") == TYPE and self.f.input_value(d).first() is True:
                yield d

    class JqMap(beam.DoFn):
        def setup(self):
            self.p = jq.compile(prog)

        def process(self, d):
            yield from self.p.input_value(d).all()

    with beam.Pipeline(runner=FnApiRunner()) as p:
        (
            p
            | beam.io.ReadFromText(src)
            | "Parse" >> beam.Map(orjson.loads)
            | "Filter" >> beam.ParDo(JqFilter())
            | "Transform" >> beam.ParDo(JqMap())
            | "Encode" >> beam.Map(lambda d: orjson.dumps(d).decode())
            | beam.io.WriteToText(str(Path(dst) / "part"), file_name_suffix=".jsonl")
        )


if __name__ == "__main__":
    kind, src, dst = sys.argv[1:4]
    {"loop": run_loop, "beam": run_beam, "beam-jq": run_beam_jq}[kind](src, dst)
