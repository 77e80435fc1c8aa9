"""``aws.s3`` target: config and declaration (Beam transform: :mod:`meshline.connectors.aws.s3_target`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from meshline.config import Duration, doc
from meshline.connectors.aws.common import AwsConnection
from meshline.connectors.late import Late
from meshline.connectors.objects_config import ObjectTargetFields
from meshline.registry import Component

__all__ = ["MIB", "MIN_PART", "TARGET", "S3TargetConfig"]

MIB = 1024 * 1024
MIN_PART = 5 * MIB  # S3's smallest part (but the last)


@dataclass(frozen=True, kw_only=True)
class _S3Where:
    """The S3 target keys listed first in the schema."""

    bucket: str = doc("the bucket name")
    prefix: str = doc("key prefix (a directory); may use {yyyy}/{mm}/{dd}/{HH} and {type}", "")


@dataclass(frozen=True, kw_only=True)
class _S3TargetConfigFields:
    max_event_bytes: int | None = doc(
        "dead-letter single events whose JSON form is larger than this (e.g. a row limit of your readers)",
        None,
    )
    multipart_threshold: int = doc("objects from this size up are sent as a multipart upload", 16 * MIB)
    multipart_chunk: int = doc("part size of multipart uploads (at least 5 MiB)", 8 * MIB)
    storage_class: str | None = doc("S3 storage class, e.g. STANDARD_IA, INTELLIGENT_TIERING", None)
    server_side_encryption: Literal["AES256", "aws:kms", "aws:kms:dsse"] | None = doc(
        "server-side encryption of the objects", None
    )
    kms_key_id: str | None = doc("the KMS key for aws:kms encryption", None)
    timeout: Duration = doc("network timeout of one request", Duration(60))


@dataclass(frozen=True, kw_only=True)
class S3TargetConfig(AwsConnection, _S3TargetConfigFields, ObjectTargetFields, _S3Where):
    """Write events as objects (jsonl, avro, parquet) to an Amazon S3 bucket."""

    def __post_init__(self) -> None:
        self._check_connection()
        if not self.bucket.strip() or "/" in self.bucket:
            raise ValueError(f"bucket: expected a bucket name, got {self.bucket!r}")
        self._check_object_fields()
        if self.max_event_bytes is not None and self.max_event_bytes < 1:
            raise ValueError(f"max_event_bytes: must be >= 1, got {self.max_event_bytes}")
        if self.multipart_chunk < MIN_PART:
            raise ValueError(
                f"multipart_chunk: S3 parts are at least 5 MiB (5242880), got {self.multipart_chunk}"
            )
        if self.multipart_threshold < MIN_PART:
            raise ValueError(
                f"multipart_threshold: must be at least 5 MiB (5242880), got {self.multipart_threshold}"
            )


TARGET = Component(
    id="aws.s3",
    kind="target",
    config=S3TargetConfig,
    build=Late("meshline.connectors.aws.s3_target:build"),
    description="Amazon S3 bucket: jsonl, avro or parquet objects; windows, path templates, multipart.",
    batches=True,
)
