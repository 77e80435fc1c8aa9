"""The google-cloud-storage client and error classification the GCS source and target share."""

from __future__ import annotations

from typing import Any

from meshline.connectors.delivery import PermanentError, TransientError

__all__ = ["classify", "storage_client"]


def storage_client(project: str | None, endpoint_url: str | None) -> Any:
    """A ``google.cloud.storage.Client``.

    With a plain-HTTP ``endpoint_url`` (an emulator such as fake-gcs-server) the
    client is anonymous; with an ``https://`` one (a private endpoint) it keeps
    Google's default credentials, as without any endpoint.
    """
    try:
        from google.cloud import storage  # type: ignore[attr-defined]
    except ImportError as e:  # pragma: no cover - the dependency is pinned
        raise RuntimeError(
            "google.storage needs google-cloud-storage: pip install google-cloud-storage"
        ) from e
    if endpoint_url:
        options = {"api_endpoint": endpoint_url.rstrip("/")}
        if endpoint_url.startswith("http://"):
            from google.auth.credentials import AnonymousCredentials

            return storage.Client(
                project=project or "meshline", credentials=AnonymousCredentials(), client_options=options
            )
        return storage.Client(project=project, client_options=options)
    return storage.Client(project=project)


def classify(error: BaseException, what: str) -> Exception:
    """A google-cloud-storage failure as :class:`TransientError` or :class:`PermanentError`."""
    from google.api_core import exceptions as gexc

    message = f"{what}: {type(error).__name__}: {getattr(error, 'message', None) or error}"
    if isinstance(
        error,
        (
            gexc.TooManyRequests,
            gexc.InternalServerError,
            gexc.BadGateway,
            gexc.ServiceUnavailable,
            gexc.GatewayTimeout,
        ),
    ):
        return TransientError(message)
    if isinstance(error, gexc.GoogleAPICallError):
        code = getattr(error, "code", None)
        if isinstance(code, int) and (code in (408, 429) or code >= 500):
            return TransientError(message)
        return PermanentError(message)
    # requests / urllib3 / socket: the connection failed or timed out
    if isinstance(error, (ConnectionError, TimeoutError, OSError)):
        return TransientError(message)
    from google.auth import exceptions as auth_exc

    if isinstance(error, auth_exc.TransportError) or type(error).__module__.startswith(
        ("requests", "urllib3")
    ):
        return TransientError(message)
    return PermanentError(message)
