"""``snowflake`` target: batches of events loaded with PUT + COPY INTO, then MERGEd by id.

Each batch (``batch_size`` events, ``flush_interval``, and the end of every
bundle — so an acknowledging source acknowledges only after the load committed)
goes to Snowflake the way Snowflake loads fast:

1. the rows are written as one JSON-lines file in a temporary directory;
2. ``PUT file://… @stage`` uploads it (gzip) to a temporary stage of the session
   (or the named ``stage``);
3. ``COPY INTO`` a temporary one-``VARIANT``-column load table (``PURGE = TRUE``);
4. one ``MERGE INTO table`` from the load table, deduplicated on the key columns
   (``source`` and ``id`` by default) with ``QUALIFY ROW_NUMBER() … = 1``: a
   replayed event updates its row instead of adding one, and the MERGE is a
   single atomic statement, so a batch is either all in or not at all.

``load: insert`` (or ``auto`` when the server refuses ``PUT``) fills the load
table with multi-row ``INSERT … SELECT PARSE_JSON(…)`` instead of steps 1–3; the
MERGE is the same.

Columns (``columns``, column → value): an attribute name (``id``, ``source``,
``type``, ``subject``, ``time``, any extension), ``$data`` (the event data as
``VARIANT``), ``$attributes`` (every attribute as a ``VARIANT`` object) or
``$event`` (the structured event). Default: ``ID, SOURCE, TYPE, SUBJECT, TIME
(TIMESTAMP_TZ), ATTRIBUTES (VARIANT), DATA (VARIANT)``.

Errors (SPEC §5): connection failures and timeouts are retried with the trigger's
backoff; a missing table or warehouse, missing privileges or a failed login are
permanent for the whole batch, which is dead-lettered with Snowflake's message.
Authentication: ``password``, or key pair (``private_key`` PEM text or
``private_key_file``, with ``private_key_passphrase``), or an ``authenticator``.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import apache_beam as beam
import orjson
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import Timestamp
from apache_beam.utils.windowed_value import WindowedValue

from meshline.config import Duration, doc
from meshline.connectors.delivery import Failure, PermanentError, RetryPolicy, TransientError, deliver_batch
from meshline.events import CloudEvent, dead_letter
from meshline.registry import BuildContext, Component

__all__ = ["TARGET", "SnowflakeConfig", "WriteToSnowflake", "merge_statement", "rows_of"]

_LOGGER = logging.getLogger(__name__)

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,254}$")
_STAGE = re.compile(r"^@?[A-Za-z_][A-Za-z0-9_$.%/]{0,254}$")
DEFAULT_COLUMNS = {
    "ID": "id",
    "SOURCE": "source",
    "TYPE": "type",
    "SUBJECT": "subject",
    "TIME": "time",
    "ATTRIBUTES": "$attributes",
    "DATA": "$data",
}
_VARIANTS = ("$data", "$attributes", "$event")
_LOAD_TABLE = "MESHLINE_LOAD"
_TEMP_STAGE = "MESHLINE_STAGE"
_INSERT_ROWS = 500  # rows per INSERT … VALUES statement in the insert path


@dataclass(frozen=True, kw_only=True)
class SnowflakeConfig:
    """Load events into a Snowflake table (PUT + COPY INTO, MERGE on source and id)."""

    account: str = doc("account identifier, e.g. myorg-myaccount")
    user: str = doc("user name")
    database: str = doc("database of the table")
    schema: str = doc("schema of the table")
    table: str = doc("the table (it must exist; see the docs for the default layout)")
    warehouse: str | None = doc("warehouse that runs COPY and MERGE", None)
    role: str | None = doc("role to use", None)
    password: str | None = doc("password (secret)", None, secret=True)
    private_key: str | None = doc("key-pair auth: PEM private key text (secret)", None, secret=True)
    private_key_file: str | None = doc("key-pair auth: path of a PEM private key file", None, path=True)
    private_key_passphrase: str | None = doc(
        "passphrase of an encrypted private key (secret)", None, secret=True
    )
    authenticator: str | None = doc(
        "e.g. externalbrowser, oauth, SNOWFLAKE_JWT (default: by the keys given)", None
    )
    token: str | None = doc("OAuth token with authenticator: oauth (secret)", None, secret=True)
    endpoint_url: str | None = doc(
        "talk to this URL instead of https://ACCOUNT.snowflakecomputing.com (a proxy, a local fake)", None
    )
    columns: dict[str, str] = doc(
        "column → value: an attribute name, $data, $attributes or $event", dict(DEFAULT_COLUMNS)
    )
    key: list[str] = doc("attributes a replayed event is recognized by (MERGE key)", ["source", "id"])
    load: Literal["auto", "copy", "insert"] = doc(
        "'copy': PUT + COPY INTO; 'insert': multi-row INSERT; 'auto': copy, else insert if PUT is refused",
        "auto",
    )
    stage: str | None = doc("named stage for PUT (default: a temporary stage of the session)", None)
    batch_size: int = doc("events per load", 10000)
    flush_interval: Duration = doc("load a partial batch this long after its first event", Duration(5))
    login_timeout: Duration = doc("timeout of the login", Duration(60))

    def __post_init__(self) -> None:
        for name in ("database", "schema", "table") + (("warehouse",) if self.warehouse else ()):
            value = getattr(self, name)
            if not _IDENT.match(value):
                raise ValueError(
                    f"{name}: must be a plain identifier (letters, digits, _ and $), got {value!r}"
                )
        if not self.columns:
            raise ValueError("columns: must name at least one column")
        for col, value in self.columns.items():
            if not _IDENT.match(col):
                raise ValueError(f"columns: column names must be plain identifiers, got {col!r}")
            if not value or (value.startswith("$") and value not in _VARIANTS):
                raise ValueError(f"columns.{col}: expected an attribute name, $data, $attributes or $event")
        mapped = set(self.columns.values())
        for k in self.key:
            if k not in mapped:
                raise ValueError(f"key: attribute {k!r} must be mapped to a column in columns")
        if not self.key:
            raise ValueError("key: must name at least one attribute (e.g. [source, id])")
        if self.stage and not _STAGE.match(self.stage):
            raise ValueError(f"stage: must be a stage name like @my_stage, got {self.stage!r}")
        if not 1 <= self.batch_size <= 1_000_000:
            raise ValueError(f"batch_size: must be between 1 and 1000000, got {self.batch_size}")


# --------------------------------------------------------------------------- pure parts


def _time_or_none(value: Any) -> str | None:
    """An RFC 3339 time Snowflake can cast, else ``None`` (the attributes column keeps the original)."""
    if not isinstance(value, str):
        return None
    try:
        dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value


def _data_variant(event: CloudEvent) -> Any:
    data = event.data
    if isinstance(data, (bytes, bytearray, memoryview)):
        return event.to_dict().get("data_base64")
    return data


def rows_of(events: Sequence[CloudEvent], columns: dict[str, str]) -> list[bytes]:
    """One JSON object per event: ``{"c0": …, "c1": …}`` in column order."""
    plan = list(columns.values())
    rows = []
    for event in events:
        attrs = event.attributes
        row: dict[str, Any] = {}
        for i, value in enumerate(plan):
            if value == "$data":
                v: Any = _data_variant(event)
            elif value == "$attributes":
                v = attrs
            elif value == "$event":
                v = event.to_dict()
            elif value == "time":
                v = _time_or_none(attrs.get("time"))
            else:
                v = attrs.get(value)
                if v is not None and not isinstance(v, str):
                    v = str(v)
            row[f"c{i}"] = v
        rows.append(orjson.dumps(row))
    return rows


def merge_statement(table: str, columns: dict[str, str], key: Sequence[str], load_table: str) -> str:
    """The MERGE from the load table into ``table``, deduplicated on ``key``."""
    cols = list(columns)
    exprs = []
    for i, (col, value) in enumerate(columns.items()):
        if value in _VARIANTS:
            exprs.append(f"v:c{i} AS {col}")
        elif value == "time":
            exprs.append(f"v:c{i}::TIMESTAMP_TZ AS {col}")
        else:
            exprs.append(f"v:c{i}::VARCHAR AS {col}")
    key_cols = [cols[list(columns.values()).index(k)] for k in key]
    partition = ", ".join(f"v:c{list(columns.values()).index(k)}" for k in key)
    on = " AND ".join(f"t.{c} = s.{c}" for c in key_cols)
    others = [c for c in cols if c not in key_cols]
    update = ", ".join(f"{c} = s.{c}" for c in others)
    matched = f" WHEN MATCHED THEN UPDATE SET {update}" if others else ""
    return (
        f"MERGE INTO {table} t USING (SELECT {', '.join(exprs)} FROM {load_table} "
        f"QUALIFY ROW_NUMBER() OVER (PARTITION BY {partition} ORDER BY 1) = 1) s ON {on}{matched} "
        f"WHEN NOT MATCHED THEN INSERT ({', '.join(cols)}) VALUES ({', '.join('s.' + c for c in cols)})"
    )


def _connect_args(c: SnowflakeConfig) -> dict[str, Any]:
    args: dict[str, Any] = {
        "account": c.account,
        "user": c.user,
        "database": c.database,
        "schema": c.schema,
        "login_timeout": float(c.login_timeout),
        "client_session_keep_alive": True,
        "session_parameters": {"QUERY_TAG": "meshline"},
    }
    if c.warehouse:
        args["warehouse"] = c.warehouse
    if c.role:
        args["role"] = c.role
    if c.password:
        args["password"] = c.password
    if c.authenticator:
        args["authenticator"] = c.authenticator
    if c.token:
        args["token"] = c.token
    if c.private_key or c.private_key_file:
        args["private_key"] = _private_key_der(c)
        args.setdefault("authenticator", "SNOWFLAKE_JWT")
    if c.endpoint_url:
        scheme, _, rest = c.endpoint_url.partition("://")
        host, _, port = rest.rstrip("/").partition(":")
        args.update(protocol=scheme or "https", host=host, port=int(port) if port else 443)
    return args


def _private_key_der(c: SnowflakeConfig) -> bytes:
    from cryptography.hazmat.primitives import serialization

    if c.private_key:
        pem = c.private_key.encode()
    else:
        assert c.private_key_file is not None
        with open(c.private_key_file, "rb") as fh:
            pem = fh.read()
    password = c.private_key_passphrase.encode() if c.private_key_passphrase else None
    try:
        key = serialization.load_pem_private_key(pem, password=password)
    except (ValueError, TypeError) as e:
        # never echo the key or passphrase
        raise PermanentError(f"private_key: cannot load the PEM key ({type(e).__name__})") from None
    return key.private_bytes(
        encoding=serialization.Encoding.DER,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )


def _classify(error: BaseException) -> BaseException:
    """Snowflake connector errors → TransientError / PermanentError with Snowflake's message."""
    from snowflake.connector import errors as sf

    if isinstance(error, (TransientError, PermanentError)):
        return error
    msg = " ".join(str(error).split())
    if isinstance(error, (sf.OperationalError, sf.InterfaceError, OSError, TimeoutError)):
        return TransientError(msg)
    sqlstate = getattr(error, "sqlstate", None) or ""
    if sqlstate.startswith("08") or getattr(error, "errno", None) in (390114, 250001, 250003):
        return TransientError(msg)  # connection lost, token expired, could not connect
    return PermanentError(msg)


# --------------------------------------------------------------------------- the loader


class _Loader:
    """One Snowflake session: load table, stage and the prepared MERGE."""

    def __init__(self, config: SnowflakeConfig):
        self._config = config
        self._conn: Any = None
        self._mode = config.load
        # session-scoped on Snowflake; unique names also keep parallel workers apart on look-alikes
        suffix = uuid.uuid4().hex[:12].upper()
        self._load_table = f"{_LOAD_TABLE}_{suffix}"
        self._temp_stage = f"{_TEMP_STAGE}_{suffix}"
        self._merge = merge_statement(config.table, config.columns, config.key, self._load_table)
        self._tmp = tempfile.mkdtemp(prefix="meshline-snowflake-")

    def _connection(self) -> Any:
        if self._conn is None:
            import snowflake.connector

            conn = snowflake.connector.connect(**_connect_args(self._config))
            cur = conn.cursor()
            cur.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {self._load_table} (v VARIANT)")
            if not self._config.stage and self._mode != "insert":
                cur.execute(f"CREATE TEMPORARY STAGE IF NOT EXISTS {self._temp_stage}")
            self._conn = conn
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                pass
            self._conn = None
        shutil.rmtree(self._tmp, ignore_errors=True)

    def load(self, rows: Sequence[bytes]) -> None:
        try:
            cur = self._connection().cursor()
            cur.execute(f"TRUNCATE TABLE {self._load_table}")
            if self._mode != "insert":
                try:
                    self._put_copy(cur, rows)
                except Exception as e:
                    if self._mode == "copy" or not _put_unsupported(e):
                        raise
                    _LOGGER.warning("snowflake target: PUT refused (%s); loading with INSERT", e)
                    self._mode = "insert"
                    cur.execute(f"TRUNCATE TABLE {self._load_table}")
                    self._insert(cur, rows)
            else:
                self._insert(cur, rows)
            cur.execute(self._merge)
        except Exception as e:
            err = _classify(e)
            if isinstance(err, TransientError):
                self.close_connection()  # the next attempt logs in again
            raise err from None

    def close_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass

    def _put_copy(self, cur: Any, rows: Sequence[bytes]) -> None:
        name = f"batch-{uuid.uuid4().hex}.json"
        path = os.path.join(self._tmp, name)
        with open(path, "wb") as fh:
            fh.write(b"\n".join(rows))
            fh.write(b"\n")
        stage = self._config.stage or f"@{self._temp_stage}"
        if not stage.startswith("@"):
            stage = "@" + stage
        try:
            cur.execute(f"PUT 'file://{path}' {stage}/meshline AUTO_COMPRESS = TRUE OVERWRITE = TRUE")
        finally:
            os.unlink(path)
        # the path names exactly this file (a unique name); FILES = (…) would do too on Snowflake
        cur.execute(
            f"COPY INTO {self._load_table} FROM {stage}/meshline/{name}.gz "
            "FILE_FORMAT = (TYPE = JSON) PURGE = TRUE"
        )

    def _insert(self, cur: Any, rows: Sequence[bytes]) -> None:
        for start in range(0, len(rows), _INSERT_ROWS):
            chunk = [r.decode() for r in rows[start : start + _INSERT_ROWS]]
            values = ", ".join(["(%s)"] * len(chunk))
            sql = f"INSERT INTO {self._load_table} SELECT PARSE_JSON(column1) FROM VALUES {values}"
            cur.execute(sql, chunk)


def _put_unsupported(error: BaseException) -> bool:
    text = str(error).lower()
    return "put" in text and ("not supported" in text or "unsupported" in text or "syntax error" in text)


class _SnowflakeWriteFn(beam.DoFn):
    def __init__(self, config: SnowflakeConfig, policy: RetryPolicy, target: str):
        self._config = config
        self._policy = policy
        self._delivered = beam.metrics.Metrics.counter("meshline", f"target.{target}.delivered")
        self._retried = beam.metrics.Metrics.counter("meshline", f"target.{target}.retried")

    def setup(self):
        self._loader = _Loader(self._config)

    def teardown(self):
        loader = getattr(self, "_loader", None)
        if loader is not None:
            loader.close()

    def start_bundle(self):
        self._events: list[CloudEvent] = []
        self._first = 0.0

    def process(self, event: CloudEvent):
        if not self._events:
            self._first = time.monotonic()
        self._events.append(event)
        c = self._config
        if len(self._events) >= c.batch_size or time.monotonic() - self._first >= c.flush_interval:
            return self._flush()
        return None

    def _flush(self) -> list[CloudEvent]:
        events, self._events = self._events, []
        if not events:
            return []
        rows = rows_of(events, self._config.columns)

        def send(batch: Sequence[int]) -> list[Failure]:
            self._loader.load(rows if len(batch) == len(rows) else [rows[i] for i in batch])
            return []

        def on_retry(n: int) -> None:
            self._retried.inc(n)

        failed = deliver_batch(list(range(len(events))), send, self._policy, on_retry=on_retry)
        self._delivered.inc(len(events) - len(failed))
        return [dead_letter(events[i], why, "deliver") for i, why in failed]

    def finish_bundle(self):
        now = Timestamp.now()
        for dl in self._flush():
            yield WindowedValue(dl, now, (GlobalWindow(),))


class WriteToSnowflake(beam.PTransform):
    """Events → dead letters (stage ``deliver``) of the batches Snowflake finally refused."""

    def __init__(
        self, config: SnowflakeConfig, *, target_name: str = "snowflake", policy: RetryPolicy | None = None
    ):
        super().__init__()
        self._fn = _SnowflakeWriteFn(config, policy or RetryPolicy(), target_name)

    def expand(self, events):
        return events | "Load" >> beam.ParDo(self._fn).with_output_types(CloudEvent)


def build(config: SnowflakeConfig, ctx: BuildContext) -> WriteToSnowflake:
    return WriteToSnowflake(config, target_name=ctx.name, policy=ctx.delivery)


TARGET = Component(
    id="snowflake",
    kind="target",
    config=SnowflakeConfig,
    build=build,
    description="Load events into a Snowflake table: PUT + COPY INTO, then MERGE on source and id.",
)
