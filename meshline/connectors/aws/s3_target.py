"""``aws.s3`` target: events as jsonl / avro / parquet objects in an S3 bucket.

The object-store core (:mod:`meshline.connectors.objects`) does encoding,
windows, roll-over, path templates and deterministic names; this module is the
S3 store under it: ``PutObject`` for small objects, a multipart upload (parts
sent in parallel, aborted on failure) from ``multipart_threshold`` up.

Failures (SPEC §5): throttling (SlowDown), 5xx, timeouts and connection errors
are retried per the trigger's ``delivery``; ``NoSuchBucket``, ``AccessDenied``
and other client errors dead-letter the object's events at once with a message
that says what to fix. ``max_event_bytes`` rejects single events larger than a
row your readers accept (dead letter, stage ``deliver``, with the size).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import apache_beam as beam

from meshline.config import Duration, doc
from meshline.connectors.aws.common import AwsConnection, aws_error, client, error_code
from meshline.connectors.delivery import PermanentError
from meshline.connectors.objects import ObjectTargetFields, WriteObjects, target_args
from meshline.events import CloudEvent, to_json
from meshline.registry import BuildContext, Component

__all__ = ["TARGET", "S3Store", "S3TargetConfig", "WriteToS3"]

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


class S3Store:
    """``put`` whole objects into one bucket; raises TransientError / PermanentError."""

    def __init__(self, config: S3TargetConfig, parallel_parts: int = 4):
        self._config = config
        self._bucket = config.bucket
        self._s3 = client(
            config, "s3", sdk_retries=False, pool=parallel_parts + 2, read_timeout=float(config.timeout)
        )
        self._parallel = parallel_parts
        extra: dict[str, str] = {}
        if config.storage_class:
            extra["StorageClass"] = config.storage_class
        if config.server_side_encryption:
            extra["ServerSideEncryption"] = config.server_side_encryption
        if config.kms_key_id:
            extra["SSEKMSKeyId"] = config.kms_key_id
        self._extra = extra

    def put(self, key: str, data: bytes, content_type: str) -> None:
        try:
            if len(data) >= self._config.multipart_threshold:
                self._multipart(key, data, content_type)
            else:
                self._s3.put_object(
                    Bucket=self._bucket, Key=key, Body=data, ContentType=content_type, **self._extra
                )
        except Exception as e:
            raise self._classify(e, key) from None

    def _multipart(self, key: str, data: bytes, content_type: str) -> None:
        upload = self._s3.create_multipart_upload(
            Bucket=self._bucket, Key=key, ContentType=content_type, **self._extra
        )["UploadId"]
        chunk = self._config.multipart_chunk
        view = memoryview(data)
        ranges = [(n + 1, view[o : o + chunk]) for n, o in enumerate(range(0, len(data), chunk))]

        def send(part: tuple[int, memoryview]) -> dict[str, Any]:
            number, body = part
            r = self._s3.upload_part(
                Bucket=self._bucket, Key=key, UploadId=upload, PartNumber=number, Body=bytes(body)
            )
            return {"PartNumber": number, "ETag": r["ETag"]}

        try:
            with ThreadPoolExecutor(max_workers=min(self._parallel, len(ranges))) as pool:
                parts = list(pool.map(send, ranges))
            self._s3.complete_multipart_upload(
                Bucket=self._bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            try:
                self._s3.abort_multipart_upload(Bucket=self._bucket, Key=key, UploadId=upload)
            except Exception:
                pass
            raise

    def _classify(self, e: BaseException, key: str) -> Exception:
        code = error_code(e)
        where = f"s3://{self._bucket}/{key}"
        if code == "NoSuchBucket":
            return PermanentError(f"bucket {self._bucket!r} does not exist (NoSuchBucket)")
        if code in ("AccessDenied", "AllAccessDisabled", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            return PermanentError(
                f"writing {where} was refused ({code}): check the credentials and s3:PutObject permission"
            )
        return aws_error(e, f"writing {where}")

    def list_keys(self, prefix: str) -> list[str]:
        try:
            pages = self._s3.get_paginator("list_objects_v2").paginate(Bucket=self._bucket, Prefix=prefix)
            return [o["Key"] for page in pages for o in page.get("Contents", ())]
        except Exception as e:
            raise self._classify(e, prefix) from None

    def get(self, key: str) -> bytes | None:
        try:
            return self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read()
        except Exception as e:
            if error_code(e) in ("NoSuchKey", "404"):
                return None
            raise self._classify(e, key) from None

    def exists(self, key: str) -> bool:
        try:
            self._s3.head_object(Bucket=self._bucket, Key=key)
            return True
        except Exception as e:
            if error_code(e) in ("NoSuchKey", "404", "NotFound"):
                return False
            raise self._classify(e, key) from None

    def delete(self, keys: list[str]) -> None:
        if keys:
            objects = [{"Key": k} for k in keys]
            self._s3.delete_objects(Bucket=self._bucket, Delete={"Objects": objects, "Quiet": True})

    def close(self) -> None:
        self._s3.close()


class _MakeStore:
    """Picklable factory: the boto3 client is created on the worker."""

    def __init__(self, config: S3TargetConfig):
        self._config = config

    def __call__(self) -> S3Store:
        return S3Store(self._config)


class _TooLarge:
    """The ``reject`` check of :class:`WriteObjects`: events whose JSON form exceeds ``max_event_bytes``."""

    def __init__(self, limit: int):
        self._limit = limit

    def __call__(self, event: CloudEvent) -> str | None:
        size = len(to_json(event))
        if size > self._limit:
            return f"event of {size} bytes exceeds max_event_bytes ({self._limit}) of this target"
        return None


class WriteToS3(beam.PTransform):
    """``PCollection[CloudEvent]`` → dead letters (stage ``deliver``)."""

    def __init__(self, config: S3TargetConfig, *, target_name: str = "s3", **target: Any):
        """``target``: what :func:`~meshline.connectors.objects.target_args` gives (policy, runner …)."""
        super().__init__()
        self._config = config
        self._target = {"target_name": target_name, **target}

    def expand(self, events):
        c = self._config
        # The size check runs inside the writing DoFn (no Flatten): on the direct runner and
        # Prism a Flatten would start a new stage, and a source would delete messages before
        # their dead letters were written.
        return events | "Objects" >> WriteObjects.of(
            _MakeStore(c),
            c,
            prefix=c.prefix,
            reject=_TooLarge(c.max_event_bytes) if c.max_event_bytes is not None else None,
            **self._target,
        )


def build(config: S3TargetConfig, ctx: BuildContext) -> WriteToS3:
    return WriteToS3(config, **target_args(ctx))


TARGET = Component(
    id="aws.s3",
    kind="target",
    config=S3TargetConfig,
    build=build,
    description="Amazon S3 bucket: jsonl, avro or parquet objects; windows, path templates, multipart.",
    batches=True,
)
