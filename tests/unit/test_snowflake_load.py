"""snowflake target: pure parts (rows, the MERGE statement, config checks, connection args)."""

from __future__ import annotations

import orjson
import pytest

from meshline.connectors.delivery import PermanentError, TransientError
from meshline.connectors.snowflake import (
    DEFAULT_COLUMNS,
    SnowflakeConfig,
    _classify,
    _connect_args,
    merge_statement,
    rows_of,
)
from meshline.events import CloudEvent


def _cfg(**kw) -> SnowflakeConfig:
    base = dict(account="a", user="u", password="p", database="DB", schema="S", table="T")
    base.update(kw)
    return SnowflakeConfig(**base)


def test_rows_hold_attributes_and_variants_in_column_order():
    e = CloudEvent.create(id="1", source="/s", type="t", time="2026-01-01T00:00:00Z", data={"a": [1]}, n=3)
    bad_time = CloudEvent.create(id="2", source="/s", type="t", time="yesterday", data=b"\x01")
    rows = [orjson.loads(r) for r in rows_of([e, bad_time], DEFAULT_COLUMNS)]
    assert rows[0] == {
        "c0": "1",
        "c1": "/s",
        "c2": "t",
        "c3": None,
        "c4": "2026-01-01T00:00:00Z",
        "c5": {
            "specversion": "1.0",
            "id": "1",
            "source": "/s",
            "type": "t",
            "time": "2026-01-01T00:00:00Z",
            "n": 3,
        },
        "c6": {"a": [1]},
    }
    assert rows[1]["c4"] is None  # an uncastable time does not fail the batch; ATTRIBUTES keeps it
    assert rows[1]["c5"]["time"] == "yesterday"
    assert rows[1]["c6"] == "AQ=="


def test_merge_deduplicates_on_the_key_and_updates_the_rest():
    sql = merge_statement("T", {"ID": "id", "SRC": "source", "D": "$data"}, ["source", "id"], "L")
    assert "PARTITION BY v:c1, v:c0" in sql
    assert "ON t.SRC = s.SRC AND t.ID = s.ID" in sql
    assert "WHEN MATCHED THEN UPDATE SET D = s.D" in sql
    assert "INSERT (ID, SRC, D) VALUES (s.ID, s.SRC, s.D)" in sql
    assert "v:c2 AS D" in sql and "v:c0::VARCHAR AS ID" in sql


@pytest.mark.parametrize(
    ("kw", "key"),
    [
        ({"table": "t; drop table x"}, "table"),
        ({"columns": {"ID": "$nope"}}, "columns.ID"),
        ({"columns": {"ID": "id"}}, "key"),
        ({"stage": "x y"}, "stage"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_config_errors_name_the_key(kw, key):
    with pytest.raises(ValueError, match=f"^{key}:"):
        _cfg(**kw)


def test_endpoint_url_and_secrets_in_connect_args():
    args = _connect_args(_cfg(endpoint_url="http://127.0.0.1:8123", warehouse="WH", role="R"))
    assert (args["protocol"], args["host"], args["port"]) == ("http", "127.0.0.1", 8123)
    assert args["warehouse"] == "WH" and args["role"] == "R" and args["password"] == "p"


def test_key_pair_auth_loads_the_key_and_never_echoes_it():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pass-phrase"),
    ).decode()
    args = _connect_args(_cfg(password=None, private_key=pem, private_key_passphrase="pass-phrase"))
    assert args["authenticator"] == "SNOWFLAKE_JWT" and isinstance(args["private_key"], bytes)
    with pytest.raises(PermanentError) as e:
        _connect_args(_cfg(password=None, private_key=pem, private_key_passphrase="wrong"))
    assert "pass-phrase" not in str(e.value) and "BEGIN" not in str(e.value)


def test_error_classification():
    from snowflake.connector import errors as sf

    assert isinstance(_classify(sf.OperationalError("connection reset")), TransientError)
    missing = sf.ProgrammingError("Table 'T' does not exist", errno=2003, sqlstate="42S02")
    assert isinstance(_classify(missing), PermanentError)
    assert isinstance(_classify(sf.DatabaseError("lost", sqlstate="08001")), TransientError)
