"""The CloudEvent element type and the CloudEvents bindings.

Every element between Meshline stages is a :class:`CloudEvent` (spec 1.0.2):
``attributes`` holds the context attributes and extensions (``str``, ``int`` or
``bool`` values) and ``data`` holds the payload — a JSON value, ``bytes`` for
binary data (``data_base64`` in the JSON format), or ``None`` when absent.

This module also carries the CloudEvents JSON format (both ways) and the HTTP and
Kafka protocol bindings (binary and structured modes) the connectors share. Every
decoder accepts exactly the events the specification calls valid
(:mod:`meshline.attributes` says which attributes are) and raises
:class:`EventError` naming the attribute and the rule for the others; see
``docs/cloudevents.md`` for what each binding accepts and refuses.

Why not the ``cloudevents`` package's event class: it validates and copies on
every construction and has no deterministic Beam coder; a slotted class with two
fields costs a fraction of that on the hot path. The package is used in the tests
as an independent implementation of the same bindings (interoperability checks).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, unquote

import orjson

from meshline.attributes import (
    CONTEXT_ATTRIBUTES,
    KNOWN_NAMES,
    SPECVERSION,
    bad_character,
    is_name,
    problem,
    valid_media_type,
)
from meshline.attributes import problems as attribute_problems
from meshline.attributes import valid as valid_attributes
from meshline.errors import EventError
from meshline.jsontext import canonical, dumps, parse_json, read_exact
from meshline.secrets import mask

__all__ = [
    "CONTEXT_ATTRIBUTES",
    "ERROR_EXTENSIONS",
    "CloudEvent",
    "EventBatch",
    "binary_content_type",
    "binary_data",
    "dead_letter",
    "decode_data",
    "each_event",
    "encode_data",
    "event_from_attributes",
    "from_http",
    "from_json",
    "from_json_dict",
    "from_kafka",
    "is_valid_extension_name",
    "parse_json",
    "structured_only",
    "to_http_binary",
    "to_http_structured",
    "to_json",
    "to_kafka_binary",
    "to_kafka_structured",
]

ERROR_EXTENSIONS = ("meshlineerror", "meshlineerrorstage", "meshlinetrigger", "meshlinestep")
MAX_ERROR_BYTES = 1024
STRUCTURED_CT = "application/cloudevents+json"
BATCH_CT = "application/cloudevents-batch+json"
_MAX_CACHED_NAMES = 4096


def is_valid_extension_name(name: str) -> bool:
    """A CloudEvents attribute name: lowercase ASCII letters and digits (the whole string).

    Names longer than 20 characters are valid: the specification only says they
    SHOULD NOT be used.
    """
    return is_name(name)


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


class CloudEvent:
    """One CloudEvent: context attributes plus data.

    ``attributes`` must hold ``specversion``, ``id``, ``source`` and ``type``.
    Events are treated as immutable once emitted: transformations copy, never
    mutate, because one event may fan out to several triggers.
    """

    __slots__ = ("_form", "attributes", "data")

    def __init__(self, attributes: dict[str, Any], data: Any = None):
        self.attributes = attributes
        self.data = data
        # The JSON form, once known (see :meth:`json_form`); never part of the event's value.
        self._form: dict[str, Any] | None = None

    @classmethod
    def create(
        cls,
        *,
        id: str,  # noqa: A002 - the CloudEvents attribute name
        source: str,
        type: str,  # noqa: A002
        data: Any = None,
        **extra: Any,
    ) -> CloudEvent:
        attrs: dict[str, Any] = {"specversion": SPECVERSION, "id": id, "source": source, "type": type}
        attrs.update({k: v for k, v in extra.items() if v is not None})
        return cls(attrs, data)

    # Convenience accessors for the required attributes.
    @property
    def id(self) -> str:
        return self.attributes["id"]

    @property
    def source(self) -> str:
        return self.attributes["source"]

    @property
    def type(self) -> str:
        return self.attributes["type"]

    def get(self, name: str, default: Any = None) -> Any:
        return self.attributes.get(name, default)

    def replace(self, data: Any = ..., **attributes: Any) -> CloudEvent:
        """A copy with some attributes (``None`` removes one) and/or data replaced."""
        attrs = dict(self.attributes)
        for k, v in attributes.items():
            if v is None:
                attrs.pop(k, None)
            else:
                attrs[k] = v
        return CloudEvent(attrs, self.data if data is ... else data)

    def to_dict(self) -> dict[str, Any]:
        """The CloudEvents JSON format as a dict (what jq programs see)."""
        d = dict(self.attributes)
        data = self.data
        if data is not None:
            if isinstance(data, (bytes, bytearray, memoryview)):
                d["data_base64"] = base64.b64encode(bytes(data)).decode("ascii")
            else:
                d["data"] = data
        return d

    def json_form(self) -> dict[str, Any]:
        """The JSON form (like :meth:`to_dict`), computed once and shared: never modify it."""
        form = self._form
        if form is None:
            form = self._form = self.to_dict()
        return form

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CloudEvent):
            return NotImplemented
        return self.attributes == other.attributes and self.data == other.data

    def __hash__(self) -> int:
        return hash((self.attributes.get("source"), self.attributes.get("id")))

    def __repr__(self) -> str:
        return f"CloudEvent({self.attributes!r}, data={self.data!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (CloudEvent, (self.attributes, self.data))


class EventBatch(list):
    """Events that travel as one Beam element: they share its timestamp and its window.

    Sources that read many events at once (files, Kafka) emit them in batches; the
    router keeps them batched for targets that take batches (``Component.batches``)
    and emits the rest one by one. A Beam element costs about 1 µs per stage it
    crosses, as much as a filter; a batch pays it once. Whatever a consumer does
    with a batch, it does as if each event had come alone, in the batch's order.
    """

    __slots__ = ()

    def __reduce__(self) -> tuple[Any, ...]:
        return (EventBatch, (list(self),))


def each_event(element: CloudEvent | EventBatch) -> list[CloudEvent] | EventBatch:
    """The events of a Beam element that is an event or an :class:`EventBatch`."""
    return element if type(element) is EventBatch else [element]  # type: ignore[list-item]


# --------------------------------------------------------------------------- JSON format


def from_json_dict(d: Any, *, default_specversion: bool = False) -> CloudEvent:
    """Build an event from the CloudEvents JSON format; raise :class:`EventError`.

    The dict is not modified. With ``default_specversion`` a missing
    ``specversion`` is taken as ``1.0`` (handy for hand-written test inputs).
    """
    if type(d) is dict:
        event = _fast_event(d)
        if event is not None:
            return event
    return _from_json_dict_checked(d, default_specversion)


def _fast_event(d: dict[str, Any]) -> CloudEvent | None:
    """The event of a well-formed JSON form, or ``None`` to take the checked path."""
    attrs = d.copy()
    data = attrs.pop("data", None)
    if "data_base64" in attrs or not valid_attributes(attrs):
        return None
    return CloudEvent(attrs, data)


def event_from_attributes(attrs: dict[str, Any], data: Any = None) -> CloudEvent:
    """An event from the attributes a binary-mode binding decoded; raise :class:`EventError`.

    ``attrs`` holds canonical strings or native values, never a ``data`` member.
    """
    if not valid_attributes(attrs):
        problems = attribute_problems(attrs)
        if problems:
            raise EventError("; ".join(problems))
    return CloudEvent(attrs, data)


def _from_json_dict_checked(d: Any, default_specversion: bool) -> CloudEvent:
    if not isinstance(d, dict):
        raise EventError(f"a CloudEvent must be a JSON object, got {_json_type(d)}")
    attrs: dict[str, Any] = {}
    data: Any = None
    problems: list[str] = []
    for k, v in d.items():
        if k == "data":
            data = v
        elif v is None:
            continue  # null attributes are absent (JSON format §2.2)
        elif k == "data_base64":
            if not isinstance(v, str):
                problems.append("data_base64 must be a string")
                continue
            try:
                data = base64.b64decode(v, validate=True)
            except ValueError:
                problems.append("data_base64 is not valid base64 (RFC 4648)")
        elif not isinstance(v, (str, int)) or type(v) is float:  # bool is an int
            got = "a number that is not an integer" if type(v) is float else f"an {_json_type(v)}"
            types = "a string" if k in CONTEXT_ATTRIBUTES else "a string, integer or boolean"
            problems.append(f"attribute {k!r} must be {types}, got {got}")
        else:
            attrs[k] = v
    if "data" in d and d.get("data_base64") is not None:
        problems.append("both data and data_base64 are present (JSON format §3.1.1: mutually exclusive)")
    if "specversion" not in attrs and default_specversion:
        attrs["specversion"] = SPECVERSION
    problems.extend(attribute_problems(attrs))
    if problems:
        raise EventError("; ".join(problems))
    return CloudEvent(attrs, data)


def _json_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return type(v).__name__


def from_json(raw: bytes | bytearray | memoryview | str) -> CloudEvent:
    """Parse one structured CloudEvent (JSON text); raise :class:`EventError`."""
    try:
        d = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise EventError(f"not valid JSON: {e}") from None
    if type(d) is dict:  # _fast_event(d), inline: the hot path of every file source
        attrs = d.copy()
        data = attrs.pop("data", None)
        unescaped = type(raw) is bytes and raw.find(b"\\") < 0  # no escape: see valid_attributes
        if "data_base64" not in attrs and valid_attributes(attrs, unescaped):
            if type(raw) is bytes:  # canonical(raw, d), inline
                dumped = orjson.dumps(d)
                exact = raw == dumped or (raw.startswith(dumped) and raw[len(dumped) :].isspace())
            else:
                exact = canonical(raw, d)
            if exact:  # no repeated member, no rounded integer (meshline.jsontext)
                event = CloudEvent(attrs, data)
                if data is not None and len(d) == len(attrs) + 1:
                    event._form = d  # exactly the JSON form: valid attributes plus data
                return event
    return _from_json_dict_checked(read_exact(raw, "object"), False)


def to_json(event: CloudEvent) -> bytes:
    """The CloudEvents JSON format as UTF-8 bytes."""
    try:
        return orjson.dumps(event.json_form())
    except orjson.JSONEncodeError:
        return dumps(event.json_form())  # integers beyond 64 bits


def __getattr__(name: str) -> Any:
    """``CloudEventCoder`` lives in :mod:`meshline.coder` (it imports Beam); handed out on first use."""
    if name == "CloudEventCoder":
        from meshline.coder import CloudEventCoder

        return CloudEventCoder
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --------------------------------------------------------------------------- dead letters


def dead_letter(
    event: CloudEvent, error: BaseException | str, stage: str, trigger: str = "", step: str = ""
) -> CloudEvent:
    """The original event plus the four ``meshline*`` error extensions (SPEC §5).

    The message never carries a credential: secret values this process knows and
    URL passwords are masked (:func:`meshline.secrets.mask`).
    """
    message = mask(error if isinstance(error, str) else _error_message(error))
    if not message.isprintable():  # a String attribute: no newlines or other controls
        message = _printable(message)
    encoded = message.encode("utf-8")
    if len(encoded) > MAX_ERROR_BYTES:
        message = encoded[: MAX_ERROR_BYTES - 3].decode("utf-8", "ignore") + "..."
    attrs = dict(event.attributes)
    attrs["meshlineerror"] = message
    attrs["meshlineerrorstage"] = stage
    attrs["meshlinetrigger"] = trigger
    attrs["meshlinestep"] = step
    return CloudEvent(attrs, event.data)


def _printable(text: str) -> str:
    """``text`` with the characters the String type disallows replaced (whitespace by a space)."""
    out = []
    for c in text:
        if c in "\t\n\r":
            out.append(" ")
        elif bad_character(c) is not None:
            out.append("\ufffd")
        else:
            out.append(c)
    return "".join(out)


def _error_message(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    if type(error).__module__.startswith("meshline"):
        return text
    return f"{type(error).__name__}: {text}"


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
