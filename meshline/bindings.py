"""The CloudEvents protocol bindings the connectors share: HTTP and Kafka, binary and structured.

Binary mode carries the attributes in headers (``ce-*`` for HTTP, ``ce_*`` for
Kafka) and the data as the message body; structured mode carries the whole event
in the JSON format (:func:`meshline.events.to_json`). Every decoder accepts
exactly the events the specification calls valid and raises
:class:`~meshline.errors.EventError` naming the attribute and the rule for the
others; see ``docs/cloudevents.md`` for what each binding accepts and refuses.

This module sits on :mod:`meshline.events` (the event type and the JSON format).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, unquote

import orjson

from meshline.attributes import KNOWN_NAMES, is_name, problem, valid_media_type
from meshline.errors import EventError
from meshline.events import (
    BATCH_CT,
    STRUCTURED_CT,
    CloudEvent,
    event_from_attributes,
    from_json,
    from_json_dict,
    to_json,
)
from meshline.jsontext import canonical, dumps, parse_json, read_exact

__all__ = [
    "binary_content_type",
    "binary_data",
    "decode_data",
    "encode_data",
    "from_http",
    "from_kafka",
    "structured_only",
    "to_http_binary",
    "to_http_structured",
    "to_kafka_binary",
    "to_kafka_structured",
]

_MAX_CACHED_NAMES = 4096

_JSON_MEDIA: dict[str, bool] = {}


def _is_json_content_type(ct: Any) -> bool:
    """JSON format §3.1: no content type, or a media type ``*/json`` or ``*/*+json``."""
    if ct is None:
        return True
    known = _JSON_MEDIA.get(ct) if type(ct) is str else False
    if known is None:
        subtype = ct.split(";", 1)[0].strip().lower().partition("/")[2]
        known = subtype == "json" or subtype.endswith("+json")
        if len(_JSON_MEDIA) < _MAX_CACHED_NAMES:
            _JSON_MEDIA[ct] = known
    return known


# --------------------------------------------------------------------------- payloads


def encode_data(event: CloudEvent) -> bytes:
    """The event's data as a message body (binary mode)."""
    data = event.data
    if data is None:
        return b""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    if isinstance(data, str) and not _is_json_content_type(event.attributes.get("datacontenttype")):
        return data.encode("utf-8")
    return dumps(data)


def decode_data(body: bytes | None, content_type: str | None) -> Any:
    """A message body as event data: JSON for JSON content types, text for text/* and XML, else bytes.

    Without a content type the body is JSON when it parses, else bytes — for wrapping
    messages that are not CloudEvents. (A CloudEvent in binary mode without a content
    type has opaque data: JSON format §3.1 implies ``application/json`` only for the
    JSON format itself.)
    """
    if not body:
        return None
    if content_type is None:
        try:
            return parse_json(body)
        except EventError:
            return bytes(body)
    return binary_data(body, content_type)


def binary_data(body: bytes | bytearray | memoryview | None, content_type: str | None) -> Any:
    """A binary-mode body as event data, as its content type declares it: JSON for ``*/json``
    and ``*/*+json``; text for ``text/*`` and XML in UTF-8; else (and without a content
    type) bytes."""
    if not body:
        return None  # an empty body is no data
    if content_type is None:
        return bytes(body)
    if _is_json_content_type(content_type):
        try:
            return parse_json(body)
        except EventError as e:
            raise EventError(f"the body is not valid JSON although its content type says so ({e})") from None
    media, _, params = content_type.partition(";")
    media = media.strip().lower()
    if (media.startswith("text/") or media.endswith(("/xml", "+xml"))) and _utf8(params):
        try:
            return bytes(body).decode("utf-8")
        except UnicodeDecodeError:
            pass
    return bytes(body)


_CHARSET = re.compile(r'(?:^|;)[ \t]*charset[ \t]*=[ \t]*"?([^";]*)', re.IGNORECASE)


def _utf8(params: str) -> bool:
    """The media type's parameters name no charset, or UTF-8 (or its subset US-ASCII)."""
    m = _CHARSET.search(params)
    return m is None or m.group(1).strip().lower() in ("utf-8", "utf8", "us-ascii")


def _attr_str(v: Any) -> str:
    """The canonical string of an attribute value (Type System)."""
    if type(v) is str:
        return v
    if type(v) is bool:
        return "true" if v else "false"
    if type(v) is int:
        return str(v)
    raise EventError(f"an attribute value must be a string, integer or boolean, got {type(v).__name__}")


def binary_content_type(event: CloudEvent) -> str | None:
    """The content type binary mode declares: ``datacontenttype``, else ``application/json``
    for JSON data (JSON format §3.1.2: the implied type, set explicitly), else none."""
    ct = event.attributes.get("datacontenttype")
    if ct is not None:
        if type(ct) is not str or not valid_media_type(ct):
            raise EventError(problem("datacontenttype", ct) or f"invalid datacontenttype {ct!r}")
        return ct
    data = event.data
    if data is None or isinstance(data, (bytes, bytearray, memoryview)):
        return None
    return "application/json"


def _header_name(prefix: str, name: str, value: Any) -> str:
    if name in KNOWN_NAMES or is_name(name):
        return prefix + name
    raise EventError(problem(name, value) or f"invalid attribute name {name!r}")


# --------------------------------------------------------------------------- HTTP binding

# HTTP binding §3.1.3.2: percent-encode space, '"', '%' and everything outside printable
# ASCII (U+0021-U+007E). quote() with this safe set encodes exactly those, upper case.
_HTTP_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '%"')
_MALFORMED_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def structured_only(ct: Any) -> bool:
    """Data whose content type is a CloudEvents format cannot travel in binary mode: a receiver
    would read the message as structured (HTTP §3, Kafka §3, AMQP §3). Such events are sent in
    structured mode instead."""
    return type(ct) is str and ct[:23].lower() == "application/cloudevents"


def to_http_binary(event: CloudEvent) -> tuple[dict[str, str], bytes]:
    """Binary mode: ``ce-*`` headers plus the data as body."""
    if structured_only(event.attributes.get("datacontenttype")):
        return to_http_structured(event)
    headers: dict[str, str] = {}
    for k, v in event.attributes.items():
        if k != "datacontenttype":
            try:
                headers[_header_name("ce-", k, v)] = quote(_attr_str(v), safe=_HTTP_SAFE)
            except UnicodeEncodeError:
                raise EventError(problem(k, v) or f"attribute {k!r} is not valid Unicode") from None
    ct = binary_content_type(event)
    if ct is not None:
        headers["content-type"] = ct
    return headers, encode_data(event)


def to_http_structured(event: CloudEvent) -> tuple[dict[str, str], bytes]:
    """Structured mode: the JSON format as body."""
    return {"content-type": STRUCTURED_CT + "; charset=utf-8"}, to_json(event)


def _http_value(header: str, value: str) -> str:
    """HTTP binding §3.1.3.2: undo RFC 7230 quoted strings, then one strict percent-decoding."""
    v = value.strip(" \t")
    if '"' in v:
        v = _unquote_quoted_strings(header, v)
    if not v.isascii():
        raise EventError(
            f"header {header!r}: a value must be US-ASCII, other characters percent-encoded "
            "(HTTP binding §3.1.3.2)"
        )
    if "%" not in v:
        return v
    if _MALFORMED_PERCENT.search(v):
        raise EventError(f"header {header!r}: '%' not followed by two hex digits (HTTP binding §3.1.3.2)")
    try:
        return unquote(v, errors="strict")
    except UnicodeDecodeError:
        raise EventError(
            f"header {header!r}: percent-encoded bytes that are not valid UTF-8 (HTTP binding §3.1.3.2)"
        ) from None


def _unquote_quoted_strings(header: str, v: str) -> str:
    """RFC 7230 §3.2.6: each quoted-string loses its quotes and its backslash escapes."""
    out: list[str] = []
    i, n = 0, len(v)
    while i < n:
        c = v[i]
        i += 1
        if c != '"':
            out.append(c)
            continue
        while True:
            if i >= n:
                raise EventError(f"header {header!r}: unterminated quoted string (RFC 7230 §3.2.6)")
            c = v[i]
            i += 1
            if c == '"':
                break
            if c == "\\":
                if i >= n:
                    raise EventError(f"header {header!r}: unterminated quoted string (RFC 7230 §3.2.6)")
                c = v[i]
                i += 1
            out.append(c)
    return "".join(out)


def from_http(headers: Mapping[str, str], body: bytes) -> list[CloudEvent] | None:
    """Events in an HTTP message (binary, structured or batch mode).

    Returns ``None`` when the message is not a CloudEvent at all (so a caller can
    wrap it) and raises :class:`EventError` when it claims to be one but is broken.
    """
    h: dict[str, str] = {}
    twice: list[str] = []
    for k, v in headers.items():
        n = k.lower()
        if n in h and (n.startswith("ce-") or n == "content-type"):
            twice.append(n)
        h[n] = v
    ct = h.get("content-type")
    if ct is not None:
        ct = ct.strip(" \t")  # present but empty is an invalid datacontenttype, not none
    media = ct.split(";", 1)[0].strip().lower() if ct else ""
    if media == STRUCTURED_CT:
        return [from_json(body)]
    if media == BATCH_CT:
        return _from_batch(body)
    if "ce-specversion" not in h:
        return None
    if twice:
        raise EventError(
            f"header {twice[0]!r} appears more than once (an attribute MUST appear at most once)"
        )
    if "ce-datacontenttype" in h:
        raise EventError(
            "header 'ce-datacontenttype' must not be present: in binary mode the content type is "
            "the Content-Type header (HTTP binding §3.1.1)"
        )
    attrs: dict[str, Any] = {n[3:]: _http_value(n, v) for n, v in h.items() if n.startswith("ce-")}
    if ct is not None:
        attrs["datacontenttype"] = ct
    return [event_from_attributes(attrs, binary_data(body, ct))]


def _from_batch(body: bytes) -> list[CloudEvent]:
    """JSON batch format (§4): an array of events in the JSON format."""
    try:
        items = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise EventError(f"batch is not valid JSON: {e}") from None
    if not isinstance(items, list):
        raise EventError("a CloudEvents batch must be a JSON array")
    if not canonical(body, items):
        items = read_exact(body, "batch")
    events = []
    for n, item in enumerate(items, 1):
        try:
            events.append(from_json_dict(item))
        except EventError as e:
            raise EventError(f"batch item {n}: {e}") from None
    return events


# --------------------------------------------------------------------------- Kafka binding


def _kafka_key(event: CloudEvent, key_attribute: str | None) -> bytes | None:
    """The record key (a key mapper, Kafka binding §3.1): it reads the event, never changes it."""
    attrs = event.attributes
    if key_attribute:
        v = attrs.get(key_attribute)
    else:
        v = attrs.get("partitionkey") or attrs.get("subject") or attrs["id"]
    if type(v) is str:
        return v.encode()
    return None if v is None else _attr_str(v).encode("utf-8")


_KAFKA_HEADER_NAMES: dict[str, str] = {"datacontenttype": "content-type"}
_JSON_CT_HEADER = ("content-type", b"application/json")


def _kafka_header(name: str, value: Any) -> tuple[str, bytes]:
    header = _KAFKA_HEADER_NAMES.get(name)
    if header is None:
        header = _header_name("ce_", name, value)
        if len(_KAFKA_HEADER_NAMES) < _MAX_CACHED_NAMES:
            _KAFKA_HEADER_NAMES[name] = header
    elif name == "datacontenttype" and type(value) is not str:
        raise EventError(problem(name, value) or "invalid datacontenttype")
    try:
        return header, _attr_str(value).encode()
    except UnicodeEncodeError:
        raise EventError(problem(name, value) or f"attribute {name!r} is not valid Unicode") from None


def to_kafka_binary(
    event: CloudEvent, key_attribute: str | None = None
) -> tuple[bytes | None, bytes, list[tuple[str, bytes]]]:
    """Binary mode: ``ce_*`` headers, data as value; key = ``partitionkey``/``subject``/``id``."""
    attrs = event.attributes
    ct = attrs.get("datacontenttype")
    if ct is not None and structured_only(ct):
        return to_kafka_structured(event, key_attribute)
    names = _KAFKA_HEADER_NAMES
    headers: list[tuple[str, bytes]] = []
    add = headers.append
    try:  # the common case: string attributes whose header names are cached
        for k, v in attrs.items():
            add((names[k], v.encode()))
    except (KeyError, AttributeError, UnicodeEncodeError):
        headers = [_kafka_header(k, v) for k, v in attrs.items()]
    data = event.data
    if type(data) is dict or type(data) is list:
        try:
            value = orjson.dumps(data)
        except orjson.JSONEncodeError:
            value = dumps(data)
    else:
        value = encode_data(event)
    if data is not None and ct is None and not isinstance(data, (bytes, bytearray)):
        headers.append(_JSON_CT_HEADER)
    return _kafka_key(event, key_attribute), value, headers


def to_kafka_structured(
    event: CloudEvent, key_attribute: str | None = None
) -> tuple[bytes | None, bytes, list[tuple[str, bytes]]]:
    """Structured mode: the JSON format as value."""
    return _kafka_key(event, key_attribute), to_json(event), [("content-type", STRUCTURED_CT.encode())]


def _kafka_text(header: str, v: Any) -> str:
    if isinstance(v, (bytes, bytearray, memoryview)):
        try:
            return bytes(v).decode("utf-8")
        except UnicodeDecodeError:
            raise EventError(
                f"header {header!r} is not UTF-8 (Kafka binding §3.2.3: header values MUST be UTF-8)"
            ) from None
    return str(v)


def from_kafka(
    key: bytes | None, value: bytes | None, headers: Iterable[tuple[str, bytes | None]] | None
) -> CloudEvent | None:
    """The event in a Kafka record, or ``None`` when the record is not a CloudEvent.

    The record key is not part of the event (Kafka binding §3.1: a key mapper MUST NOT
    modify the event): ``partitionkey`` is the ``ce_partitionkey`` header's, if any.
    Header names are matched with the ``ce_`` prefix in any case, the attribute name
    as it is; a broken header matters only when the record is in binary mode.
    """
    attrs: dict[str, Any] = {}
    ct: Any = None
    wrong = ""  # the first refusal, raised if the record is in binary mode
    for k, v in headers or ():
        if k.startswith("ce_") or k[:3].lower() == "ce_":
            if v is None:
                continue
            name = k[3:]
            if name in attrs:
                wrong = (
                    wrong or f"header {k!r} appears more than once (an attribute MUST appear at most once)"
                )
                continue
            try:
                attrs[name] = v.decode()
            except (AttributeError, UnicodeDecodeError):
                try:
                    attrs[name] = _kafka_text(k, v)
                except EventError as e:
                    wrong = wrong or str(e)
                    attrs[name] = ""
        elif v is not None and k.lower() == "content-type":
            if ct is not None:
                wrong = wrong or "header 'content-type' appears more than once"
            ct = v
    if ct is not None:
        ct = _kafka_text("content-type", ct)
        if ct[:23].lower() == "application/cloudevents" and (
            ct.split(";", 1)[0].strip().lower() == STRUCTURED_CT
        ):
            return from_json(value or b"")
    if "specversion" not in attrs:
        return None
    if wrong:
        raise EventError(wrong)
    if "datacontenttype" in attrs:
        raise EventError(
            "header 'ce_datacontenttype' must not be present: in binary mode the content type is "
            "the content-type header (Kafka binding §3.2.1)"
        )
    if ct is not None:
        attrs["datacontenttype"] = ct
    return event_from_attributes(attrs, binary_data(value, ct))
