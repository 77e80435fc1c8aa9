"""The CloudEvents AMQP binding for AMQP 0-9-1 messages, and connection helpers (no Beam here)."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import hashlib
import string
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import orjson

from meshline.attributes import bad_character, problem
from meshline.bindings import binary_content_type, binary_data, encode_data, structured_only
from meshline.connectors.delivery import PermanentError, reason
from meshline.errors import EventError
from meshline.events import (
    BATCH_CT,
    STRUCTURED_CT,
    CloudEvent,
    event_from_attributes,
    from_json,
    is_valid_extension_name,
    parse_json,
    to_json,
)

__all__ = [
    "MESSAGE_TYPE",
    "check_url",
    "describe",
    "event_to_message",
    "message_to_event",
    "parameters",
    "render_key",
    "safe_url",
    "source_uri",
    "template_fields",
]

MESSAGE_TYPE = "dev.meshline.amqp.message"
PREFIXES = ("cloudevents:", "cloudevents_")


def safe_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for errors and logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def check_url(url: str) -> None:
    if not url.startswith(("amqp://", "amqps://")):
        raise ValueError(f"url: must start with amqp:// or amqps://, got {safe_url(url)!r}")


def parameters(url: str, heartbeat: int | None = None) -> Any:
    import pika

    params = pika.URLParameters(url)
    params.connection_attempts = 1
    params.socket_timeout = 10
    params.blocked_connection_timeout = 60
    if heartbeat is not None:
        params.heartbeat = heartbeat
    return params


def source_uri(url: str, queue: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    if parts.port and parts.port not in (5672, 5671):
        host = f"{host}:{parts.port}"
    vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
    return f"amqp://{host}/{quote(vhost, safe='')}/{quote(queue, safe='')}"


# --------------------------------------------------------------------------- message → event


def _time_text(v: dt.datetime) -> str:
    t = v if v.tzinfo else v.replace(tzinfo=dt.UTC)
    return t.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _attr_value(name: str, v: Any) -> Any:
    """A header value as a CloudEvents attribute value (AMQP binding §3.1.3.2).

    Native AMQP types map to their CloudEvents types: boolean, integer, string; a
    timestamp is a ``Timestamp`` (its RFC 3339 string) and binary is ``Binary`` (its
    canonical string, Base64). A decimal is taken when it is a whole number (the
    binding MAY accept numeric types other than long). Anything else has no
    CloudEvents type.
    """
    if isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, (bytes, bytearray)):
        return base64.b64encode(bytes(v)).decode("ascii")
    if isinstance(v, dt.datetime):
        return _time_text(v)
    if isinstance(v, decimal.Decimal) and v == v.to_integral_value():
        return int(v)
    raise EventError(
        f"header {name!r}: a {type(v).__name__} value has no CloudEvents type (AMQP binding §3.1.3.2)"
    )


def _loose_data(body: bytes, content_type: str | None) -> tuple[Any, str | None]:
    """A plain message's body: JSON if it parses, else text, else bytes; and its content type."""
    if not body:
        return None, content_type
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if not media or media == "application/json" or media.endswith("+json") or media == "text/json":
        try:
            return parse_json(body), content_type
        except EventError:
            pass
    if not media or media.startswith("text/") or media.endswith(("/xml", "+xml", "/json", "+json")):
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return body, content_type or "application/octet-stream"
        return text, content_type or "text/plain"
    return body, content_type


def _binary_event(headers: dict[str, Any], ct: str | None, body: bytes) -> CloudEvent:
    """A binary-mode message: ``cloudEvents:`` / ``cloudEvents_`` headers and the body as data."""
    attrs: dict[str, Any] = {}
    for k, v in headers.items():
        if k[:12].lower() not in PREFIXES or v is None:
            continue
        name = k[12:]  # attribute names are lower case: "cloudEvents:ID" names no attribute
        if name in attrs:
            raise EventError(
                f"attribute {name!r} appears in two headers (an attribute MUST appear at most once)"
            )
        if name == "datacontenttype":
            raise EventError(
                f"header {k!r} must not be present: in binary mode the content type is the message's "
                "content_type property (AMQP binding §3.1.1)"
            )
        attrs[name] = _attr_value(k, v)
    if ct is not None:
        attrs["datacontenttype"] = ct
    return event_from_attributes(attrs, binary_data(body, ct))


def message_to_event(source: str, method: Any, properties: Any, body: bytes) -> CloudEvent:
    """One AMQP message as a CloudEvent; raises :class:`EventError` for a broken CloudEvent."""
    headers = properties.headers or {}
    ct = properties.content_type
    media = ct.split(";", 1)[0].strip().lower() if ct else ""
    if media == STRUCTURED_CT:
        return from_json(body)
    if media == BATCH_CT:
        raise EventError("CloudEvents batch mode is not supported over AMQP: one event per message")
    if any(k[:12].lower() in PREFIXES for k in headers):
        return _binary_event(headers, ct, body)
    data, ct = _loose_data(body, ct)
    mid = properties.message_id
    if not mid:
        digest = hashlib.sha256()
        for part in (method.exchange or "", method.routing_key or "", str(properties.timestamp)):
            digest.update(part.encode("utf-8", "replace") + b"\0")
        digest.update(orjson.dumps(headers, default=str, option=orjson.OPT_SORT_KEYS) + b"\0")
        digest.update(body)
        mid = digest.hexdigest()[:32]
    attrs = {"specversion": "1.0", "id": str(mid), "source": source, "type": MESSAGE_TYPE}
    if properties.timestamp:
        attrs["time"] = _time_text(dt.datetime.fromtimestamp(properties.timestamp, dt.UTC))
    if ct:
        attrs["datacontenttype"] = ct
    if method.routing_key:
        attrs["amqproutingkey"] = method.routing_key
    if method.exchange:
        attrs["amqpexchange"] = method.exchange
    for k, v in headers.items():
        name = k.lower()
        if not is_valid_extension_name(name) or name in attrs or v is None:
            continue
        try:
            value = _attr_value(k, v)
        except EventError:
            continue  # a nested table or list has no CloudEvents attribute form
        if isinstance(value, str) and bad_character(value) is not None:
            continue  # not a CloudEvents String (a control character…): not an attribute
        if type(value) is int and not -(2**31) <= value < 2**31:
            value = str(value)  # beyond the 32-bit Integer: its decimal text
        attrs[name] = value
    return CloudEvent(attrs, data)


def template_fields(template: str) -> list[str]:
    names = []
    for _, name, spec, conv in string.Formatter().parse(template):
        if name is None:
            continue
        if not name or spec or conv or not is_valid_extension_name(name):
            raise ValueError(f"placeholders must be {{attribute}}, got {template!r}")
        names.append(name)
    return names


def render_key(template: str, event: CloudEvent) -> str:
    """The routing key for ``event``; a missing attribute is a :class:`PermanentError`."""
    if "{" not in template:
        return template
    values = {}
    for name in template_fields(template):
        v = event.attributes.get(name)
        if v is None:
            raise PermanentError(f"routing_key {template!r}: the event has no attribute {name!r}")
        values[name] = v if isinstance(v, str) else orjson.dumps(v).decode()
    return template.format(**values)


def event_to_message(
    event: CloudEvent, mode: str, prefix: str = "cloudEvents:"
) -> tuple[dict[str, Any], bytes]:
    """``(properties, body)`` for ``event`` per the CloudEvents AMQP binding.

    Binary mode: each attribute but ``datacontenttype`` is a header with its native
    type (string, integer, boolean); ``time`` stays an RFC 3339 string (an AMQP 0-9-1
    timestamp holds whole seconds only). The content type is ``datacontenttype``, or
    ``application/json`` for JSON data without one.
    """
    if mode == "structured" or structured_only(event.attributes.get("datacontenttype")):
        return {"content_type": STRUCTURED_CT, "message_id": str(event.attributes["id"])}, to_json(event)
    headers: dict[str, Any] = {}
    for k, v in event.attributes.items():
        if k == "datacontenttype":
            continue
        if not is_valid_extension_name(k):
            raise EventError(
                f"invalid attribute name {k!r}: attribute names are lowercase letters a-z and digits 0-9"
            )
        if type(v) not in (str, int, bool):
            raise EventError(f"attribute {k!r} must be a string, integer or boolean, got {type(v).__name__}")
        if type(v) is str and not v.isprintable() and bad_character(v) is not None:
            raise EventError(problem(k, v) or f"attribute {k!r} is not a CloudEvents String")
        headers[prefix + k] = v
    props: dict[str, Any] = {"headers": headers, "message_id": str(event.attributes["id"])}
    ct = binary_content_type(event)
    if ct is not None:
        props["content_type"] = ct
    return props, encode_data(event)


def describe(e: BaseException) -> str:
    """A one-line reason from a pika error (they never carry the password)."""
    args: tuple[Any, ...] = tuple(getattr(e, "args", ()))
    if len(args) >= 2 and isinstance(args[0], int):
        return f"{args[0]} {args[1]}"
    return reason(e)
