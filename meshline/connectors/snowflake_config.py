"""``snowflake`` target: config and declaration (the Beam transform: :mod:`meshline.connectors.snowflake`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from meshline.config import Duration, doc
from meshline.connectors.late import Late
from meshline.registry import Component

__all__ = ["DEFAULT_COLUMNS", "TARGET", "SnowflakeConfig"]

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,254}\Z")
_STAGE = re.compile(r"^@?[A-Za-z_][A-Za-z0-9_$.%/]{0,254}\Z")
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
    password: str | None = doc("password", None, secret=True)
    private_key: str | None = doc("key-pair auth: PEM private key text", None, secret=True)
    private_key_file: str | None = doc("key-pair auth: path of a PEM private key file", None, path=True)
    private_key_passphrase: str | None = doc("passphrase of an encrypted private key", None, secret=True)
    authenticator: str | None = doc(
        "e.g. externalbrowser, oauth, SNOWFLAKE_JWT (default: by the keys given)", None
    )
    token: str | None = doc("OAuth token with authenticator: oauth", None, secret=True)
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


TARGET = Component(
    id="snowflake",
    kind="target",
    config=SnowflakeConfig,
    build=Late("meshline.connectors.snowflake:build"),
    description="Load events into a Snowflake table: PUT + COPY INTO, then MERGE on source and id.",
)
