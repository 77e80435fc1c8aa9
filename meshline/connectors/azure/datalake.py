"""``azure.datalake`` target: objects in Azure Data Lake Storage Gen2 / Blob storage.

Writes through the Blob API (``azure-storage-blob``), which serves
hierarchical-namespace (Data Lake Gen2) accounts as well as flat ones: an
object ``a/b/part-….parquet`` appears in Data Lake as file ``part-….parquet`` in
directory ``a/b``. Encoding, path templates, windows, roll-over and
deterministic object names come from :mod:`meshline.connectors.objects`.

Objects up to ``max_single_put_size`` go in one request; larger ones as blocks
of ``max_block_size`` committed together, so a reader never sees half an
object. Connection errors, timeouts, 429 and 5xx are retried per the triggers'
``delivery`` (the SDK's own retries are off so that policy rules); a missing
container or denied access is permanent and dead-letters the object's events
with the server's reason.

Credentials: ``connection_string``; or ``account_url`` with ``account_key`` or
``sas_token``; or ``account_url`` alone with ``DefaultAzureCredential`` (needs
``azure-identity``: environment, workload identity, managed identity, az login).
``endpoint_url`` points at a local or private Blob endpoint (e.g. azurite,
``http://127.0.0.1:10000/devstoreaccount1``) and overrides the account's URL.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from meshline.config import Duration, doc
from meshline.connectors.delivery import PermanentError, TransientError
from meshline.connectors.objects_config import ObjectTargetFields
from meshline.errors import ConfigError
from meshline.registry import BuildContext, Component

if TYPE_CHECKING:
    from meshline.connectors.objects import WriteObjects

__all__ = ["TARGET", "DataLakeTargetConfig", "classify", "redact"]

_LOGGER = logging.getLogger(__name__)
MIB = 1024 * 1024
_SECRETS = re.compile(r"(?i)(sig=|AccountKey=|SharedAccessSignature=)[^&;\s\"']+")


@dataclass(frozen=True, kw_only=True)
class _DataLakeAccount:
    account_url: str | None = doc(
        "the account URL, https://ACCOUNT.blob.core.windows.net (a .dfs. URL is accepted)", None
    )
    connection_string: str | None = doc(
        "a storage connection string (instead of account_url)", None, secret=True
    )
    account_key: str | None = doc("the account key (with account_url)", None, secret=True)
    sas_token: str | None = doc("a SAS token (with account_url)", None, secret=True)
    container: str = doc("the container (Data Lake file system)")
    prefix: str = doc("directory of the objects; may use {yyyy}/{mm}/{dd}/{HH} and {type}", "")


@dataclass(frozen=True, kw_only=True)
class _DataLakeClient:
    endpoint_url: str | None = doc(
        "a local or private Blob endpoint, e.g. http://127.0.0.1:10000/devstoreaccount1 (azurite)", None
    )
    max_single_put_size: int = doc("objects up to this size are written in one request", 8 * MIB)
    max_block_size: int = doc("larger objects are written in blocks of this size", 4 * MIB)
    timeout: Duration = doc("network timeout of one request", Duration(60))


@dataclass(frozen=True, kw_only=True)
class DataLakeTargetConfig(_DataLakeClient, ObjectTargetFields, _DataLakeAccount):
    """Write events as objects (jsonl, avro, parquet) to an Azure Data Lake Gen2 / Blob container."""

    def __post_init__(self) -> None:
        if not (self.account_url or self.connection_string or self.endpoint_url):
            raise ValueError("account_url: set account_url or connection_string")
        if self.connection_string and (self.account_key or self.sas_token):
            raise ValueError("account_key, sas_token: not used with connection_string")
        if self.account_key and self.sas_token:
            raise ValueError("account_key, sas_token: set at most one")
        if not 3 <= len(self.container) <= 63:
            raise ValueError(f"container: must be 3 to 63 characters, got {self.container!r}")
        self._check_object_fields()
        for key in ("max_single_put_size", "max_block_size"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key}: must be >= 1, got {getattr(self, key)}")
        if self.max_block_size > 4000 * MIB:
            raise ValueError(f"max_block_size: must be at most 4000 MiB, got {self.max_block_size}")


def redact(text: str) -> str:
    """``text`` without SAS signatures or account keys."""
    return _SECRETS.sub(lambda m: m.group(1) + "***", text)


def _blob_url(url: str) -> str:
    return url.replace(".dfs.core.windows.net", ".blob.core.windows.net").rstrip("/")


def classify(error: BaseException, container: str) -> Exception:
    """An azure-storage-blob failure as :class:`TransientError` or :class:`PermanentError`."""
    from azure.core import exceptions as aze

    status = getattr(error, "status_code", None)
    code = getattr(error, "error_code", None)
    first = str(getattr(error, "message", None) or error).strip().splitlines()
    text = redact(first[0] if first else type(error).__name__)
    if isinstance(error, (aze.ServiceRequestError, aze.ServiceResponseError)) and status is None:
        return TransientError(f"connection to the Blob endpoint failed: {text}")
    if isinstance(status, int):
        detail = f"HTTP {status}" + (f" {code}" if code else "") + f": {text}"
        if status == 429 or status >= 500 or status == 408:
            return TransientError(detail)
        if status == 404 and str(code) in ("ContainerNotFound", "FilesystemNotFound", "None"):
            return PermanentError(f"container {container!r} does not exist ({detail})")
        if status in (401, 403):
            return PermanentError(f"access to container {container!r} denied ({detail})")
        return PermanentError(detail)
    if isinstance(error, (ConnectionError, TimeoutError)):
        return TransientError(f"connection to the Blob endpoint failed: {text}")
    return PermanentError(f"{type(error).__name__}: {text}")


def _service_client(config: DataLakeTargetConfig) -> Any:
    try:
        from azure.storage.blob import BlobServiceClient
    except ImportError as e:  # pragma: no cover - the dependency is pinned
        raise RuntimeError("azure.datalake needs azure-storage-blob: pip install azure-storage-blob") from e
    options: dict[str, Any] = {
        "max_single_put_size": config.max_single_put_size,
        "max_block_size": config.max_block_size,
        "retry_total": 0,  # the triggers' delivery policy retries
        "connection_timeout": min(float(config.timeout), 20.0),
        "read_timeout": float(config.timeout),
    }
    if config.connection_string:
        if config.endpoint_url:
            options["account_url"] = _blob_url(config.endpoint_url)
            parsed = dict(part.split("=", 1) for part in config.connection_string.split(";") if "=" in part)
            credential: Any = None
            if parsed.get("AccountName") and parsed.get("AccountKey"):
                credential = {"account_name": parsed["AccountName"], "account_key": parsed["AccountKey"]}
            elif parsed.get("SharedAccessSignature"):
                credential = parsed["SharedAccessSignature"]
            return BlobServiceClient(credential=credential, **options)
        return BlobServiceClient.from_connection_string(config.connection_string, **options)
    url = _blob_url(config.endpoint_url or config.account_url or "")
    if config.account_key:
        account = _account_name(url)
        return BlobServiceClient(
            url, credential={"account_name": account, "account_key": config.account_key}, **options
        )
    if config.sas_token:
        return BlobServiceClient(url, credential=config.sas_token.lstrip("?"), **options)
    try:
        from azure.identity import DefaultAzureCredential
    except ImportError:
        raise RuntimeError(
            "azure.datalake: no connection_string, account_key or sas_token, and azure-identity is not "
            "installed for DefaultAzureCredential (pip install azure-identity)"
        ) from None
    return BlobServiceClient(url, credential=DefaultAzureCredential(), **options)


def _account_name(url: str) -> str:
    from urllib.parse import urlparse

    parsed = urlparse(url)
    host = parsed.hostname or ""
    if host in ("127.0.0.1", "localhost") or host.replace(".", "").isdigit():
        return parsed.path.strip("/").split("/")[0]  # emulator: http://HOST:PORT/ACCOUNT
    return host.split(".")[0]


class _BlobStore:
    """One container; ``put`` replaces the object (upload_blob overwrite=True)."""

    def __init__(self, config: DataLakeTargetConfig):
        self._container_name = config.container
        self._container = _service_client(config).get_container_client(config.container)
        self._timeout = int(config.timeout)

    def put(self, key: str, data: bytes, content_type: str) -> None:
        from azure.storage.blob import ContentSettings

        try:
            self._container.upload_blob(
                key,
                data,
                overwrite=True,
                length=len(data),
                content_settings=ContentSettings(content_type=content_type),
                max_concurrency=2,
                timeout=self._timeout,
            )
        except Exception as e:
            raise classify(e, self._container_name) from None

    def list_keys(self, prefix: str) -> list[str]:
        try:
            return [
                b.name for b in self._container.list_blobs(name_starts_with=prefix, timeout=self._timeout)
            ]
        except Exception as e:
            raise classify(e, self._container_name) from None

    def get(self, key: str) -> bytes | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self._container.download_blob(key, timeout=self._timeout).readall()
        except ResourceNotFoundError:
            return None
        except Exception as e:
            raise classify(e, self._container_name) from None

    def exists(self, key: str) -> bool:
        try:
            return bool(self._container.get_blob_client(key).exists(timeout=self._timeout))
        except Exception as e:
            raise classify(e, self._container_name) from None

    def delete(self, keys: list[str]) -> None:
        for i in range(0, len(keys), 256):  # a blob batch holds at most 256 requests
            self._container.delete_blobs(*keys[i : i + 256], timeout=self._timeout)

    def close(self) -> None:
        self._container.close()


class _MakeStore:
    """Picklable factory: the client is created on the worker."""

    def __init__(self, config: DataLakeTargetConfig):
        self._config = config

    def __call__(self) -> _BlobStore:
        return _BlobStore(self._config)


def _check_credentials(config: DataLakeTargetConfig, target: str) -> None:
    """Without a key, SAS or connection string, DefaultAzureCredential must be importable."""
    if config.connection_string or config.account_key or config.sas_token:
        return
    import importlib.util

    if importlib.util.find_spec("azure.identity") is None:
        raise ConfigError(
            f"target {target}: no connection_string, account_key or sas_token, and azure-identity is not "
            "installed for DefaultAzureCredential (pip install azure-identity)"
        )


def build(config: DataLakeTargetConfig, ctx: BuildContext) -> WriteObjects:
    from meshline.connectors.objects import WriteObjects, target_args

    _check_credentials(config, ctx.name)
    return WriteObjects.of(_MakeStore(config), config, prefix=config.prefix, **target_args(ctx))


TARGET = Component(
    id="azure.datalake",
    kind="target",
    config=DataLakeTargetConfig,
    build=build,
    description="Azure Data Lake Storage Gen2 / Blob container: jsonl, avro or parquet objects per window.",
    batches=True,
)
