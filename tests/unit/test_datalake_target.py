"""azure.datalake target: config checks, error classification, secrets kept out of messages."""

from __future__ import annotations

import pytest
from azure.core import exceptions as aze

from meshline.config import parse_config
from meshline.connectors.azure.datalake import (
    TARGET,
    DataLakeTargetConfig,
    _account_name,
    _blob_url,
    classify,
    redact,
)
from meshline.connectors.delivery import PermanentError, TransientError
from meshline.errors import ConfigError


def _parse(**config):
    return parse_config(DataLakeTargetConfig, config, where="target lake")


def test_config_checks_name_the_key():
    assert _parse(account_url="https://acct.dfs.core.windows.net", container="logs").format == "jsonl"
    cases = [
        ({"container": "logs"}, "account_url: set account_url or connection_string"),
        (
            {"connection_string": "x", "account_key": "k", "container": "logs"},
            "not used with connection_string",
        ),
        (
            {"account_url": "https://a", "account_key": "k", "sas_token": "s", "container": "logs"},
            "at most one",
        ),
        ({"account_url": "https://a", "container": "x"}, "container: must be 3 to 63"),
        ({"account_url": "https://a", "container": "logs", "format": "csv"}, "format"),
        ({"account_url": "https://a", "container": "logs", "max_bytes": 0}, "max_bytes: must be >= 1"),
    ]
    for config, message in cases:
        with pytest.raises(ConfigError, match=message):
            _parse(**config)


def test_credentials_are_secret_keys():
    assert set(TARGET.secret_marks) == {"connection_string", "account_key", "sas_token"}
    schema = TARGET.schema()["properties"]
    assert all(schema[k].get("writeOnly") for k in TARGET.secret_marks)


def test_urls():
    assert _blob_url("https://acct.dfs.core.windows.net/") == "https://acct.blob.core.windows.net"
    assert _account_name("https://acct.blob.core.windows.net") == "acct"
    assert _account_name("http://127.0.0.1:10000/devstoreaccount1") == "devstoreaccount1"


def _http_error(status: int, code: str | None, message: str = "boom") -> aze.HttpResponseError:
    e = aze.HttpResponseError(message=message)
    e.status_code = status
    e.error_code = code
    return e


@pytest.mark.parametrize(
    ("error", "kind", "text"),
    [
        (_http_error(503, "ServerBusy"), TransientError, "HTTP 503 ServerBusy"),
        (_http_error(500, "InternalError"), TransientError, "HTTP 500"),
        (_http_error(429, None), TransientError, "HTTP 429"),
        (_http_error(404, "ContainerNotFound"), PermanentError, "container 'logs' does not exist"),
        (_http_error(403, "AuthorizationFailure"), PermanentError, "access to container 'logs' denied"),
        (_http_error(400, "InvalidBlobOrBlock"), PermanentError, "HTTP 400 InvalidBlobOrBlock"),
        (
            aze.ServiceRequestError("Connection refused"),
            TransientError,
            "connection to the Blob endpoint failed",
        ),
        (
            aze.ServiceResponseError("read timed out"),
            TransientError,
            "connection to the Blob endpoint failed",
        ),
    ],
)
def test_errors_are_classified(error, kind, text):
    out = classify(error, "logs")
    assert isinstance(out, kind) and text in str(out)


def test_secrets_never_reach_a_reason():
    url = "https://a.blob.core.windows.net/c/x?sv=2024&sig=SECRETSIG%3D&se=1"
    assert "SECRETSIG" not in redact(url) and "sig=***" in redact(url)
    assert "S3CR3T" not in redact("AccountName=a;AccountKey=S3CR3T==;BlobEndpoint=x")
    out = classify(aze.ServiceRequestError(f"cannot reach {url}"), "logs")
    assert "SECRETSIG" not in str(out)


def test_without_credentials_or_azure_identity_the_build_says_so(monkeypatch):
    import importlib.util

    from meshline.registry import BuildContext

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "azure.identity" else real(name, *a)
    )
    config = _parse(account_url="https://acct.blob.core.windows.net", container="logs")
    with pytest.raises(ConfigError, match=r"target lake: .*pip install azure-identity"):
        TARGET.build(config, BuildContext(integration="i", name="lake"))
    keyed = _parse(account_url="https://acct.blob.core.windows.net", account_key="a2V5", container="logs")
    assert TARGET.build(keyed, BuildContext(integration="i", name="lake")) is not None
