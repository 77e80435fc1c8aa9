"""The HTTP client side the ``http`` target and transformation share.

- one ``urllib3.PoolManager`` per worker process and setting (keep-alive,
  thread-safe), created lazily on first use — never pickled;
- :func:`send` classifies a reply per SPEC §5: 2xx is returned; 429, 5xx,
  connection errors and timeouts raise :class:`TransientError` (with the
  server's ``Retry-After``); any other status raises :class:`PermanentError`
  naming the status and a bounded excerpt of the body;
- :func:`auth_headers` builds ``Authorization`` for basic or bearer auth;
- :func:`encode_request` is the CloudEvents HTTP binding of one request (binary,
  structured or batch mode).
"""

from __future__ import annotations

import base64
import email.utils
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from meshline.bindings import to_http_binary, to_http_structured
from meshline.connectors.delivery import PermanentError, TransientError
from meshline.events import BATCH_CT, CloudEvent, to_json

__all__ = ["Reply", "auth_headers", "encode_request", "excerpt", "pool", "retry_after", "send"]

EXCERPT_BYTES = 256
_POOLS: dict[tuple[Any, ...], Any] = {}
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes


def pool(*, maxsize: int = 10, verify: bool = True) -> Any:
    """The process-wide ``urllib3.PoolManager`` for these settings (created once, shared by threads)."""
    key = (maxsize, verify)
    p = _POOLS.get(key)
    if p is None:
        import urllib3

        with _LOCK:
            p = _POOLS.get(key)
            if p is None:
                p = urllib3.PoolManager(
                    num_pools=16,
                    maxsize=maxsize,
                    block=False,
                    retries=False,
                    cert_reqs="CERT_REQUIRED" if verify else "CERT_NONE",
                )
                _POOLS[key] = p
    return p


def auth_headers(username: str | None, password: str | None, token: str | None) -> dict[str, str]:
    """``Authorization`` for basic (username/password) or bearer (token) auth; empty for none."""
    if token:
        return {"authorization": f"Bearer {token}"}
    if username is not None:
        raw = f"{username}:{password or ''}".encode()
        return {"authorization": "Basic " + base64.b64encode(raw).decode("ascii")}
    return {}


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date; ``None`` if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def excerpt(body: bytes, limit: int = EXCERPT_BYTES) -> str:
    """A bounded, one-line excerpt of a reply body for error messages."""
    text = body[:limit].decode("utf-8", "replace")
    text = " ".join(text.split())
    return text + ("…" if len(body) > limit else "")


def send(
    http: Any,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    timeout: float,
) -> Reply:
    """One request; a 2xx :class:`Reply`, else :class:`TransientError` / :class:`PermanentError`."""
    import urllib3

    try:
        r = http.request(
            method,
            url,
            body=body,
            headers=dict(headers),
            timeout=urllib3.Timeout(total=timeout),
            redirect=False,
            retries=False,
            preload_content=True,
        )
    except urllib3.exceptions.HTTPError as e:
        # Connection refused/reset, timeouts, TLS failures: the server may be back soon.
        raise TransientError(f"{method} {_safe_url(url)}: {type(e).__name__}: {_first_line(e)}") from None
    status = r.status
    reply_headers = {k.lower(): v for k, v in r.headers.items()}
    data = r.data or b""
    if 200 <= status < 300:
        return Reply(status, reply_headers, data)
    detail = f"{method} {_safe_url(url)}: HTTP {status}"
    if data:
        detail += f": {excerpt(data)}"
    if status == 429 or status >= 500 or status == 408:
        raise TransientError(detail, retry_after(reply_headers.get("retry-after")))
    raise PermanentError(detail)


def _first_line(e: BaseException) -> str:
    text = str(e).splitlines()[0] if str(e) else ""
    return text[:300]


def _safe_url(url: str) -> str:
    """The URL without userinfo or query (they may carry credentials)."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        p = urlsplit(url)
    except ValueError:
        return "<url>"
    netloc = p.hostname or ""
    if p.port:
        netloc += f":{p.port}"
    return urlunsplit((p.scheme, netloc, p.path, "", ""))


def encode_request(events: list[CloudEvent], mode: str) -> tuple[dict[str, str], bytes]:
    """Headers and body for one request carrying ``events`` (one, unless mode is batch)."""
    if mode == "batch":
        body = b"[" + b",".join([to_json(e) for e in events]) + b"]"
        return {"content-type": BATCH_CT}, body
    (event,) = events
    if mode == "structured":
        return to_http_structured(event)
    return to_http_binary(event)
