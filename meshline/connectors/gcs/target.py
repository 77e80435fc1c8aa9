"""``google.storage`` target: events as objects (jsonl, avro, parquet) in a Cloud Storage bucket.

Encoding, path templates, windows, roll-over and deterministic object names
come from :mod:`meshline.connectors.objects`. Objects are uploaded whole (the
client switches to a resumable upload above 8 MiB), so readers never see half
an object. Connection errors, timeouts, 429 and 5xx are retried per the
triggers' ``delivery`` (the client's own retries are off so that policy rules);
a missing bucket or denied access is permanent and dead-letters the object's
events with the server's reason.

Credentials are Google's application default credentials (environment,
``GOOGLE_APPLICATION_CREDENTIALS``, workload identity). ``endpoint_url`` points
at another endpoint; a plain ``http://`` one (an emulator such as
fake-gcs-server) is used anonymously.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from meshline.config import Duration, doc
from meshline.connectors.gcs.client import classify, storage_client
from meshline.connectors.objects_config import ObjectTargetFields
from meshline.registry import BuildContext, Component

if TYPE_CHECKING:
    from meshline.connectors.objects import WriteObjects

__all__ = ["TARGET", "GcsTargetConfig"]


@dataclass(frozen=True, kw_only=True)
class _GcsWhere:
    bucket: str = doc("the bucket")
    prefix: str = doc("directory of the objects; may use {yyyy}/{mm}/{dd}/{HH} and {type}", "")


@dataclass(frozen=True, kw_only=True)
class _GcsConnection:
    project: str | None = doc("the Google Cloud project for the client (default: from the credentials)", None)
    endpoint_url: str | None = doc(
        "the Cloud Storage JSON API endpoint, e.g. http://127.0.0.1:4443 for an emulator (anonymous)", None
    )
    timeout: Duration = doc("network timeout of one upload", Duration(60))


@dataclass(frozen=True, kw_only=True)
class GcsTargetConfig(_GcsConnection, ObjectTargetFields, _GcsWhere):
    """Write events as objects (jsonl, avro, parquet) to a Google Cloud Storage bucket."""

    def __post_init__(self) -> None:
        if not self.bucket.strip() or "/" in self.bucket:
            raise ValueError(f"bucket: expected a bucket name, got {self.bucket!r}")
        self._check_object_fields()


class _GcsStore:
    def __init__(self, config: GcsTargetConfig):
        self._client = storage_client(config.project, config.endpoint_url)
        self._bucket = self._client.bucket(config.bucket)
        self._name = config.bucket
        self._timeout = float(config.timeout)

    def put(self, key: str, data: bytes, content_type: str) -> None:
        try:
            self._bucket.blob(key).upload_from_string(
                data, content_type=content_type, retry=None, timeout=self._timeout
            )
        except Exception as e:
            raise classify(e, f"bucket {self._name!r}") from None

    def list_keys(self, prefix: str) -> list[str]:
        try:
            return [
                b.name for b in self._client.list_blobs(self._bucket, prefix=prefix, timeout=self._timeout)
            ]
        except Exception as e:
            raise classify(e, f"bucket {self._name!r}") from None

    def get(self, key: str) -> bytes | None:
        from google.api_core.exceptions import NotFound

        try:
            return self._bucket.blob(key).download_as_bytes(timeout=self._timeout)
        except NotFound:
            return None
        except Exception as e:
            raise classify(e, f"bucket {self._name!r}") from None

    def exists(self, key: str) -> bool:
        try:
            return bool(self._bucket.blob(key).exists(timeout=self._timeout))
        except Exception as e:
            raise classify(e, f"bucket {self._name!r}") from None

    def delete(self, keys: list[str]) -> None:
        from google.api_core.exceptions import NotFound

        for key in keys:
            try:
                self._bucket.blob(key).delete(timeout=self._timeout)
            except NotFound:
                pass

    def close(self) -> None:
        self._client.close()


class _MakeStore:
    """Picklable factory: the client is created on the worker."""

    def __init__(self, config: GcsTargetConfig):
        self._config = config

    def __call__(self) -> _GcsStore:
        return _GcsStore(self._config)


def build(config: GcsTargetConfig, ctx: BuildContext) -> WriteObjects:
    from meshline.connectors.objects import WriteObjects, target_args

    return WriteObjects.of(_MakeStore(config), config, prefix=config.prefix, **target_args(ctx))


TARGET = Component(
    id="google.storage",
    kind="target",
    config=GcsTargetConfig,
    build=build,
    description="Google Cloud Storage bucket: jsonl, avro or parquet objects per window.",
    batches=True,
)
