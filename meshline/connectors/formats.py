"""Object formats shared by the object-store targets: ``jsonl``, ``avro``, ``parquet``.

``jsonl`` holds one structured CloudEvent per line. ``avro`` and ``parquet`` hold
one row per event with the context attributes as string columns, the extensions
as a JSON object in text, and ``data`` as JSON text (``data_base64`` for binary
data) — SPEC §2. Encoders take events and return the bytes of one whole object,
so every target (local files, S3, Blob storage, GCS) writes the same thing.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterable
from typing import Any, BinaryIO, Literal, Protocol

import orjson

from meshline.events import CONTEXT_ATTRIBUTES, CloudEvent

__all__ = [
    "COLUMNS",
    "Format",
    "RecordWriter",
    "encode_events",
    "event_row",
    "events_from_object",
    "extension",
    "open_writer",
    "read_rows",
]

Format = Literal["jsonl", "avro", "parquet"]

COLUMNS = (
    "specversion",
    "id",
    "source",
    "type",
    "subject",
    "time",
    "datacontenttype",
    "dataschema",
    "extensions",
    "data",
    "data_base64",
)
_ATTRS = COLUMNS[:8]


class RecordWriter(Protocol):
    def write(self, event: CloudEvent) -> None: ...

    def size(self) -> int:
        """Bytes so far, approximately (buffered rows count at their text size)."""
        ...

    def close(self) -> None: ...


def extension(fmt: str) -> str:
    return {"jsonl": ".jsonl", "avro": ".avro", "parquet": ".parquet"}[fmt]


def event_row(event: CloudEvent) -> dict[str, str | None]:
    """One event as a flat row of optional strings (the avro/parquet schema)."""
    attrs = event.attributes
    get = attrs.get
    # context attributes of a valid event are strings (or absent); extensions are kept as JSON
    row: dict[str, str | None] = {name: get(name) for name in _ATTRS}
    values = [*row.values()]
    if values.count(None) + len(attrs) > len(_ATTRS):  # some attribute is not a context one
        ext = {k: v for k, v in attrs.items() if k not in CONTEXT_ATTRIBUTES}
        row["extensions"] = orjson.dumps(ext).decode() if ext else None
    else:
        row["extensions"] = None
    if not all(type(v) is str or v is None for v in values):  # (never, for a valid event)
        for name, v in row.items():
            if v is not None and type(v) is not str:
                row[name] = _text(v)
    data = event.data
    if isinstance(data, (bytes, bytearray, memoryview)):
        row["data"] = None
        row["data_base64"] = base64.b64encode(bytes(data)).decode("ascii")
    else:
        row["data"] = None if data is None else orjson.dumps(data).decode()
        row["data_base64"] = None
    return row


def _text(v: object) -> str | None:
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    return v if isinstance(v, str) else str(v)


_AVRO_SCHEMA = {
    "type": "record",
    "name": "CloudEvent",
    "namespace": "dev.meshline",
    "fields": [{"name": c, "type": ["null", "string"], "default": None} for c in COLUMNS],
}


class _JsonlWriter:
    def __init__(self, fh: BinaryIO):
        self._fh = fh

    def write(self, event: CloudEvent) -> None:
        self._fh.write(orjson.dumps(event.json_form(), option=orjson.OPT_APPEND_NEWLINE))

    def size(self) -> int:
        return self._fh.tell()

    def close(self) -> None:
        self._fh.flush()


class _AvroWriter:
    def __init__(self, fh: BinaryIO):
        from fastavro.write import Writer

        self._fh = fh
        self._writer = Writer(fh, _avro_schema(), codec="deflate")

    def write(self, event: CloudEvent) -> None:
        self._writer.write(event_row(event))

    def size(self) -> int:
        return int(self._fh.tell() + self._writer.io.tell())  # type: ignore[attr-defined]  # + open block

    def close(self) -> None:
        self._writer.flush()


class _ParquetWriter:
    ROW_GROUP = 65536

    def __init__(self, fh: BinaryIO):
        self._fh = fh
        self._columns: list[list[str | None]] = [[] for _ in COLUMNS]  # rows kept as columns
        self._rows = 0
        self._writer: Any = None
        self._pending = 0

    def write(self, event: CloudEvent) -> None:
        values = event_row(event).values()  # in COLUMNS order
        for column, v in zip(self._columns, values):
            column.append(v)
        self._pending += sum(map(len, filter(None, values)))
        self._rows += 1
        if self._rows >= self.ROW_GROUP:
            self._flush()

    def size(self) -> int:
        return self._fh.tell() + self._pending  # buffered rows at their uncompressed size

    def _flush(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        columns, self._columns = self._columns, [[] for _ in COLUMNS]
        self._rows = 0
        self._pending = 0
        # Columns built directly: pa.Table.from_pylist costs several µs per row more.
        table = pa.table({c: pa.array(values, type=pa.string()) for c, values in zip(COLUMNS, columns)})
        writer = self._writer
        if writer is None:
            writer = self._writer = pq.ParquetWriter(self._fh, table.schema, compression="snappy")
        writer.write_table(table)

    def close(self) -> None:
        if self._rows or self._writer is None:
            self._flush()
        assert self._writer is not None
        self._writer.close()


_WRITERS: dict[str, Any] = {"jsonl": _JsonlWriter, "avro": _AvroWriter, "parquet": _ParquetWriter}


def _avro_schema() -> Any:
    import fastavro

    return fastavro.parse_schema(dict(_AVRO_SCHEMA))


def open_writer(fmt: str, fh: BinaryIO) -> RecordWriter:
    """A streaming writer of ``fmt`` records into ``fh`` (which the caller closes)."""
    try:
        return _WRITERS[fmt](fh)
    except KeyError:
        raise ValueError(f"unknown format {fmt!r}") from None


def encode_events(fmt: str, events: Iterable[CloudEvent]) -> bytes:
    """The bytes of one whole object holding ``events`` in ``fmt``."""
    buf = io.BytesIO()
    writer = open_writer(fmt, buf)
    for e in events:
        writer.write(e)
    writer.close()
    return buf.getvalue()


def events_from_object(fmt: str, raw: bytes) -> list[CloudEvent]:
    """The events inside an object written by :func:`encode_events` (rows turned back into events)."""
    from meshline.events import from_json_dict

    if fmt == "jsonl":
        return [from_json_dict(d) for d in read_rows(fmt, raw)]
    out = []
    for row in read_rows(fmt, raw):
        attrs = {k: row[k] for k in _ATTRS if row.get(k) is not None}
        if row.get("extensions"):
            attrs.update(orjson.loads(row["extensions"]))
        if row.get("data_base64") is not None:
            data: Any = base64.b64decode(row["data_base64"])
        else:
            data = None if row.get("data") is None else orjson.loads(row["data"])
        out.append(CloudEvent(attrs, data))
    return out


def read_rows(fmt: str, raw: bytes) -> list[dict]:
    """Decode an object written by :func:`encode_events` (for tests and tools)."""
    if fmt == "jsonl":
        return [orjson.loads(line) for line in raw.splitlines() if line.strip()]
    if fmt == "avro":
        import fastavro

        return [r for r in fastavro.reader(io.BytesIO(raw)) if isinstance(r, dict)]
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return pq.read_table(io.BytesIO(raw)).to_pylist()
    raise ValueError(f"unknown format {fmt!r}")
