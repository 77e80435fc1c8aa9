"""What every AWS connector shares: connection config, boto3 clients, error classes.

Credentials follow boto3's default chain (environment, ``profile``, web
identity, container/instance role) unless the config names them; ``role_arn``
assumes a role on top of whichever credentials were found (refreshed before
they expire). Failures are sorted the way SPEC §5 wants: throttling, 5xx and
connection problems are *transient*; everything else (AccessDenied,
NoSuchBucket, a malformed request) is *permanent*.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from meshline.config import doc
from meshline.connectors.delivery import PermanentError, TransientError

__all__ = [
    "AwsConnection",
    "aws_error",
    "client",
    "error_code",
    "is_transient",
    "queue_arn",
]

# Error codes AWS documents as retryable (botocore's standard retry mode list, plus SQS/S3 ones).
_TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
        "KMS.ThrottlingException",
        "AWS.SimpleQueueService.ServiceUnavailable",
        "AWS.SimpleQueueService.InternalError",
        "ExpiredToken",
        "ExpiredTokenException",
    }
)


@dataclass(frozen=True, kw_only=True)
class AwsConnection:
    """Where and as whom to connect; a base of every AWS connector config."""

    region: str | None = doc(
        "AWS region, e.g. us-east-1 (default: from the queue URL, else the SDK's: AWS_REGION, profile)", None
    )
    endpoint_url: str | None = doc(
        "endpoint to use instead of AWS's, e.g. http://127.0.0.1:5000 (moto, LocalStack, a VPC endpoint)",
        None,
    )
    profile: str | None = doc("a named profile of ~/.aws/config (default: the SDK's chain)", None)
    role_arn: str | None = doc("a role to assume with the credentials found (STS AssumeRole)", None)
    access_key_id: str | None = doc("access key id (default: the SDK's credential chain)", None, secret=True)
    secret_access_key: str | None = doc("secret access key (with access_key_id)", None, secret=True)
    session_token: str | None = doc("session token of temporary credentials", None, secret=True)

    def _check_connection(self) -> None:
        # "" (e.g. an unset ${params.x} with default "") means "not set": the SDK's default.
        for f in dataclasses.fields(AwsConnection):
            if getattr(self, f.name) == "":
                object.__setattr__(self, f.name, None)
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError("access_key_id and secret_access_key: set both or neither")
        if self.endpoint_url is not None and not re.match(r"^https?://", self.endpoint_url):
            raise ValueError(f"endpoint_url: must start with http:// or https://, got {self.endpoint_url!r}")


_SQS_HOST = re.compile(r"^https?://(?:sqs\.)?([a-z]{2}(?:-[a-z]+)+-\d)\.(?:queue\.)?amazonaws\.com", re.I)


def region_of(conn: AwsConnection, url: str | None = None) -> str | None:
    """The configured region, else the one in an AWS queue URL, else ``None`` (the SDK decides)."""
    if conn.region:
        return conn.region
    if url:
        m = _SQS_HOST.match(url)
        if m:
            return m.group(1).lower()
    return None


def _partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def queue_arn(queue_url: str, region: str) -> str:
    """``arn:aws:sqs:REGION:ACCOUNT:NAME`` from ``…/ACCOUNT/NAME`` (AWS, moto and LocalStack URLs)."""
    parts = queue_url.rstrip("/").split("/")
    name = parts[-1]
    account = parts[-2] if len(parts) >= 2 and parts[-2].isdigit() else "000000000000"
    return f"arn:{_partition(region)}:sqs:{region}:{account}:{name}"


def session(conn: AwsConnection, region: str | None = None) -> Any:
    """A boto3 session with the configured (or default-chain) credentials."""
    import boto3

    s = boto3.Session(
        aws_access_key_id=conn.access_key_id,
        aws_secret_access_key=conn.secret_access_key,
        aws_session_token=conn.session_token,
        profile_name=conn.profile,
        region_name=region or conn.region,
    )
    if conn.role_arn:
        s = _assume_role(s, conn, region or conn.region)
    return s


def _assume_role(base: Any, conn: AwsConnection, region: str | None) -> Any:
    import boto3
    import botocore.session
    from botocore.credentials import AssumeRoleCredentialFetcher, DeferredRefreshableCredentials

    def create_client(service: str, **kwargs: Any) -> Any:
        if conn.endpoint_url and service == "sts":
            kwargs.setdefault("endpoint_url", conn.endpoint_url)
        return base.client(service, **kwargs)

    fetcher = AssumeRoleCredentialFetcher(
        client_creator=create_client,
        source_credentials=base.get_credentials(),
        role_arn=conn.role_arn,
        extra_args={"RoleSessionName": "meshline"},
    )
    core = botocore.session.Session()
    core._credentials = DeferredRefreshableCredentials(  # the documented way to plug a refresher in
        method="assume-role", refresh_using=fetcher.fetch_credentials
    )
    return boto3.Session(botocore_session=core, region_name=region)


def client(
    conn: AwsConnection,
    service: str,
    *,
    region: str | None = None,
    sdk_retries: bool = True,
    pool: int = 10,
    read_timeout: float = 60.0,
) -> Any:
    """A boto3 client; ``sdk_retries=False`` for targets, whose retries follow the trigger's delivery."""
    from botocore.config import Config

    retries = {"mode": "standard", "max_attempts": 5} if sdk_retries else {"total_max_attempts": 1}
    cfg = Config(
        retries=retries,  # type: ignore[arg-type]
        max_pool_connections=pool,
        connect_timeout=10,
        read_timeout=read_timeout,
    )
    return session(conn, region).client(service, endpoint_url=conn.endpoint_url, config=cfg)


def error_code(e: BaseException) -> str:
    response = getattr(e, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", "") or "")
    return ""


def _status(e: BaseException) -> int:
    response = getattr(e, "response", None)
    if isinstance(response, dict):
        return int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return 0


def is_transient(e: BaseException) -> bool:
    """Throttling, 429/5xx, timeouts and connection errors: worth retrying."""
    if isinstance(e, TransientError):
        return True
    if isinstance(e, PermanentError):
        return False
    from botocore import exceptions as bx

    if isinstance(
        e,
        (
            bx.EndpointConnectionError,
            bx.ConnectionClosedError,
            bx.ReadTimeoutError,
            bx.ConnectTimeoutError,
            bx.ConnectionError,
            bx.HTTPClientError,
        ),
    ):
        return True
    if isinstance(e, bx.ClientError):
        status = _status(e)
        return error_code(e) in _TRANSIENT_CODES or status == 429 or status >= 500
    return isinstance(e, (ConnectionError, TimeoutError))


def aws_error(e: BaseException, what: str) -> Exception:
    """``e`` as a :class:`TransientError` or :class:`PermanentError` saying ``what`` failed and why."""
    code = error_code(e)
    message = ""
    response = getattr(e, "response", None)
    if isinstance(response, dict):
        message = str(response.get("Error", {}).get("Message", "") or "")
    if code:
        text = f"{what}: {code}" + (f": {message}" if message else "")
    else:
        text = f"{what}: {type(e).__name__}: {e}"
    return TransientError(text) if is_transient(e) else PermanentError(text)
