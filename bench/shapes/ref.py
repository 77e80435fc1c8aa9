"""The shapes' work written by hand, the way a Python or Beam user would: one ``route`` per shape.

``route(d)`` takes an input line's parsed JSON (or, for shape 8, the raw line) and returns
``[(target, output), …]``. The plain loop (:func:`run_loop`) and the naive Beam pipeline
(:func:`run_beam`) both call it; Beam YAML calls ``keep``/``transform`` pairs. Nothing here
uses Meshline: these are the baselines Meshline's engines (jq, mapping, CESQL, the encoders)
are measured against, and the harness checks that Meshline writes the same records.

Run as ``python -m bench.shapes.ref loop|beam SHAPE INPUT OUTPUT``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

CREATED = "com.example.order.created"
RATES = {"EUR": 1.0, "USD": 0.92, "GBP": 1.17}
COLUMNS = (
    "specversion", "id", "source", "type", "subject", "time", "datacontenttype", "dataschema",
    "extensions", "data", "data_base64",
)  # fmt: skip
_CONTEXT = frozenset(COLUMNS[:8]) | {"data", "data_base64"}

Route = Callable[[Any], list[tuple[str, Any]]]


# -- 1: object-building jq


def s1_keep(d: dict) -> bool:
    data = d["data"]
    return d.get("type") == CREATED and data["amount"] > 50 and data["currency"] != "GBP"


def s1_transform(d: dict) -> dict:
    data = d["data"]
    items = data["items"]
    customer = data["customer"]
    return {
        "specversion": d["specversion"],
        "id": d["id"],
        "source": d["source"],
        "type": "com.example.order.summary",
        "subject": d["subject"],
        "time": d["time"],
        "datacontenttype": d["datacontenttype"],
        "region": d["region"],
        "priority": d["priority"],
        "data": {
            "order": data["order_id"],
            "customer": customer["name"],
            "email": customer["email"],
            "tier": customer["tier"],
            "currency": data["currency"],
            "amount": data["amount"],
            "quantity": data["quantity"],
            "lines": len(items),
            "units": sum(i["qty"] for i in items),
            "value": sum(i["qty"] * i["price"] for i in items),
            "gross": data["amount"] * data["quantity"] * 1.2,
            "label": f"{data['order_id']} for {customer['name']} ({d['region']})",
        },
    }


# -- 2: mapping


def s2_keep(d: dict) -> bool:
    return d.get("type", "").startswith("com.example.order.")


def s2_transform(d: dict) -> dict:
    out = dict(d)
    out["type"] = "com.example.order.mapped"
    data = dict(d["data"])
    customer = dict(data["customer"])
    name = customer["name"]
    data["contact"] = customer.pop("email")
    data["customer"] = customer
    data["id"] = data.pop("order_id")
    del data["notes"], data["items"]
    data["region"] = d["region"]
    data["label"] = f"order for {name}"
    data["channel"] = "shop"
    out["data"] = data
    return out


# -- 3: three CESQL triggers (no steps)


def s3_a(d: dict) -> bool:
    return d["type"].startswith("com.example.order.c") and d["region"] in ("eu", "us") and d["priority"] > 3


def s3_b(d: dict) -> bool:
    return int(d["subject"][-1]) % 3 == 0 and d["tenant"].upper() == "ACME"


def s3_c(d: dict) -> bool:
    return d["priority"] * 2 + 1 >= 15 or len(d["subject"]) > 13


# -- 4: a python function


def s4_keep(d: dict) -> bool:
    return d.get("type") == CREATED


def s4_transform(d: dict) -> dict:
    data = dict(d["data"])
    data["total_eur"] = round(data["amount"] * data["quantity"] * RATES[data["currency"]], 2)
    data["vip"] = data["customer"]["tier"] == "A"
    data["skus"] = [item["sku"] for item in data["items"]]
    out = dict(d)
    out["type"] = "com.example.order.enriched"
    out["data"] = data
    return out


# -- 5: twenty triggers (bench/shapes/__init__.py writes the same ones as YAML)

TYPES = ("com.example.order.created", "com.example.order.updated", "com.example.order.cancelled")
REGIONS = ("eu", "us", "apac")


def _total(d: dict) -> None:
    d["data"]["total"] = d["data"]["amount"] * d["data"]["quantity"]


def _label(d: dict) -> None:
    d["data"]["label"] = f"{d['subject']}/{d['region']}"


def _slim(d: dict) -> None:
    d["data"].pop("notes", None)


def _lower(d: dict) -> None:
    d["data"]["currency"] = d["data"]["currency"].lower()


S5_STEPS = (_total, _label, _slim, _lower)


def s5_filter(i: int) -> Callable[[dict], bool]:
    kind = i % 4
    if kind == 0:
        t, r = TYPES[(i // 4) % 3], REGIONS[(i // 4) % 3]
        return lambda d: d.get("type") == t and d.get("region") == r
    if kind == 1:
        p = f"customer-{i % 10}"
        return lambda d: d["subject"].startswith(p)
    if kind == 2:
        k = 1 + i % 9
        return lambda d: d["priority"] == k and d["region"] != "apac"
    limit = 20 * i
    return lambda d: d["data"]["amount"] > limit


def s5_chain(i: int) -> Callable[[dict], dict]:
    first, second = S5_STEPS[i % 4], S5_STEPS[(i + 1) % 4]

    def run(d: dict) -> dict:
        out = dict(d)
        out["data"] = dict(d["data"])
        first(out)
        second(out)
        return out

    return run


def s5_target(i: int) -> str:
    return f"t{i // 5}"


S5 = [(s5_filter(i), s5_chain(i), s5_target(i)) for i in range(20)]


def s5_route(d: dict) -> list[tuple[str, Any]]:
    return [(target, chain(d)) for keep, chain, target in S5 if keep(d)]


# -- 6, 7: a jq step, then Parquet / Avro rows


def s67_transform(d: dict) -> dict:
    data = dict(d["data"])
    data["total"] = data["amount"] * data["quantity"]
    data["big"] = data["amount"] > 200
    out = dict(d)
    out["data"] = data
    return out


def row(d: dict) -> dict[str, str | None]:
    """A CloudEvent's JSON form as the file target's Avro/Parquet row: strings, JSON text for data."""
    out: dict[str, str | None] = {c: d.get(c) for c in COLUMNS[:8]}
    ext = {k: v for k, v in d.items() if k not in _CONTEXT}
    out["extensions"] = orjson.dumps(ext).decode() if ext else None
    out["data"] = orjson.dumps(d["data"]).decode()
    out["data_base64"] = None
    return out


def s67_route(d: dict) -> list[tuple[str, Any]]:
    return [("out", row(s67_transform(d)))] if d.get("type") == CREATED else []


# -- 8: XML lines


def s8_route(line: str | bytes) -> list[tuple[str, Any]]:
    from lxml import etree

    order = etree.fromstring(line)
    if order.get("status") == "cancelled":
        return []
    customer = order.find("customer")
    items = order.findall("item")
    return [
        (
            "out",
            {
                "type": "com.example.order.xml",
                "datacontenttype": "application/json",
                "data": {
                    "id": order.get("id"),
                    "status": order.get("status"),
                    "currency": order.get("currency"),
                    "customer": customer.text,
                    "tier": customer.get("tier"),
                    "lines": len(items),
                    "units": sum(int(i.get("qty")) for i in items),
                    "total": float(order.findtext("total")),
                },
            },
        )
    ]


def s8_parse(line: str | bytes) -> dict | None:
    """Shape 8 for Beam YAML: the output, or ``None`` for a cancelled order."""
    out = s8_route(line)
    return out[0][1] if out else None


def _single(keep: Callable[[dict], bool], transform: Callable[[dict], Any]) -> Route:
    return lambda d: [("out", transform(d))] if keep(d) else []


ROUTES: dict[str, Route] = {
    "jq-object": _single(s1_keep, s1_transform),
    "mapping": _single(s2_keep, s2_transform),
    "cesql": lambda d: [(t, d) for t, keep in (("a", s3_a), ("b", s3_b), ("c", s3_c)) if keep(d)],
    "python": _single(s4_keep, s4_transform),
    "twenty-triggers": s5_route,
    "parquet": s67_route,
    "avro": s67_route,
    "xml": s8_route,
}
FORMATS = {"parquet": "parquet", "avro": "avro"}  # the others write jsonl
RAW = {"xml"}  # routes that take the raw line
TARGETS = {"cesql": ("a", "b", "c"), "twenty-triggers": ("t0", "t1", "t2", "t3")}


def _avro_schema() -> Any:
    import fastavro

    return fastavro.parse_schema(
        {
            "type": "record",
            "name": "CloudEvent",
            "namespace": "dev.meshline",
            "fields": [{"name": c, "type": ["null", "string"], "default": None} for c in COLUMNS],
        }
    )


class _ParquetFile:
    ROWS = 65536

    def __init__(self, path: Path):
        self.path, self.rows, self.writer = path, [], None

    def write(self, r: dict) -> None:
        self.rows.append(r)
        if len(self.rows) >= self.ROWS:
            self.flush()

    def flush(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table({c: pa.array([r[c] for r in self.rows], type=pa.string()) for c in COLUMNS})
        self.rows = []
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, table.schema, compression="snappy")
        self.writer.write_table(table)

    def close(self) -> None:
        if self.rows or self.writer is None:
            self.flush()
        self.writer.close()


def run_loop(shape: str, src: str, dst: str) -> None:
    route = ROUTES[shape]
    fmt = FORMATS.get(shape, "jsonl")
    loads, dumps = orjson.loads, orjson.dumps
    files: dict[str, Any] = {}
    writers: dict[str, Any] = {}

    def writer(target: str) -> Any:
        folder = Path(dst) / target
        folder.mkdir(parents=True, exist_ok=True)
        if fmt == "parquet":
            return _ParquetFile(folder / "part-00000.parquet")
        fh = files[target] = open(folder / f"part-00000.{fmt}", "wb")  # noqa: SIM115
        if fmt == "avro":
            from fastavro.write import Writer

            return Writer(fh, _avro_schema(), codec="deflate")
        return fh

    with open(src, "rb") as fin:
        for line in fin:
            for target, out in route(line if shape in RAW else loads(line)):
                w = writers.get(target) or writers.setdefault(target, writer(target))
                if fmt == "jsonl":
                    w.write(dumps(out, option=orjson.OPT_APPEND_NEWLINE))
                else:
                    w.write(out)
    for w in writers.values():
        if fmt != "jsonl":
            (w.close if fmt == "parquet" else w.flush)()
    for fh in files.values():
        fh.close()


def run_beam(shape: str, src: str, dst: str) -> None:
    import apache_beam as beam
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    route = ROUTES[shape]
    fmt = FORMATS.get(shape, "jsonl")
    targets = TARGETS.get(shape, ("out",))
    raw = shape in RAW

    class Route(beam.DoFn):
        def process(self, d: Any):
            for target, out in route(d):
                yield beam.pvalue.TaggedOutput(target, out)

    with beam.Pipeline(runner=FnApiRunner()) as p:
        lines = p | beam.io.ReadFromText(src)
        parsed = lines if raw else lines | "Parse" >> beam.Map(orjson.loads)
        routed = parsed | "Route" >> beam.ParDo(Route()).with_outputs(*targets)
        for t in targets:
            prefix = str(Path(dst) / t / "part")
            if fmt == "parquet":
                import pyarrow as pa

                schema = pa.schema([(c, pa.string()) for c in COLUMNS])
                _ = routed[t] | f"Write {t}" >> beam.io.WriteToParquet(
                    prefix, schema, file_name_suffix=".parquet", codec="snappy"
                )
            elif fmt == "avro":
                _ = routed[t] | f"Write {t}" >> beam.io.WriteToAvro(
                    prefix, _avro_schema(), file_name_suffix=".avro", codec="deflate"
                )
            else:
                _ = (
                    routed[t]
                    | f"Encode {t}" >> beam.Map(lambda d: orjson.dumps(d).decode())
                    | f"Write {t}" >> beam.io.WriteToText(prefix, file_name_suffix=".jsonl")
                )


if __name__ == "__main__":
    kind, shape, src, dst = sys.argv[1:5]
    {"loop": run_loop, "beam": run_beam}[kind](shape, src, dst)
