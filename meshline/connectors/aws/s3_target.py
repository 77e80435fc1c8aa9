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
from typing import Any

import apache_beam as beam

import meshline.coder  # noqa: F401  (registers the CloudEvent coder)
from meshline.connectors.aws.common import aws_error, client, error_code
from meshline.connectors.aws.s3_target_config import TARGET, S3TargetConfig
from meshline.connectors.delivery import PermanentError
from meshline.connectors.objects import WriteObjects, target_args
from meshline.events import CloudEvent, to_json
from meshline.registry import BuildContext

__all__ = ["TARGET", "S3Store", "S3TargetConfig", "WriteToS3"]


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
