"""The CloudEvent element type, its Beam coder, and the CloudEvents bindings.

Every element between Meshline stages is a :class:`CloudEvent` (spec 1.0):
``attributes`` holds the context attributes and extensions (``str``, ``int`` or
``bool`` values) and ``data`` holds the payload — a JSON value, ``bytes`` for
binary data (``data_base64`` in the JSON format), or ``None`` when absent.

This module also carries the CloudEvents JSON format (both ways) and the HTTP and
Kafka protocol bindings (binary and structured modes) the connectors share.

Why not the ``cloudevents`` package's event class: it validates and copies on
every construction and has no deterministic Beam coder; a slotted class with two
fields costs a fraction of that on the hot path. The package is used in the tests
as an independent implementation of the same bindings (interoperability checks).
"""

from __future__ import annotations

import base64
import pickle
import re
import struct
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, unquote

import orjson
from apache_beam import coders

from meshline.errors import EventError
from meshline.secrets import mask

__all__ = [
    "ERROR_EXTENSIONS",
    "CloudEvent",
    "CloudEventCoder",
    "EventBatch",
    "dead_letter",
    "each_event",
    "from_http",
    "from_json",
    "from_json_dict",
    "from_kafka",
    "is_valid_extension_name",
    "to_http_binary",
    "to_http_structured",
    "to_json",
    "to_kafka_binary",
    "to_kafka_structured",
]

SPECVERSION = "1.0"
REQUIRED = ("id", "source", "type")
CONTEXT_ATTRIBUTES = frozenset(
    ("specversion", "id", "source", "type", "subject", "time", "datacontenttype", "dataschema")
)
ERROR_EXTENSIONS = ("meshlineerror", "meshlineerrorstage", "meshlinetrigger", "meshlinestep")
MAX_ERROR_BYTES = 1024
STRUCTURED_CT = "application/cloudevents+json"
BATCH_CT = "application/cloudevents-batch+json"

_EXTENSION_NAME = re.compile(r"^[a-z0-9]{1,20}$")
_JSON_CT = re.compile(r"^(application/json|text/json|[^;]*\+json)\s*(;.*)?$", re.IGNORECASE)


def is_valid_extension_name(name: str) -> bool:
    """A CloudEvents attribute name: lowercase ASCII letters and digits, at most 20."""
    return bool(_EXTENSION_NAME.match(name))


def _is_json_content_type(ct: str | None) -> bool:
    return ct is None or bool(_JSON_CT.match(ct))


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


# Attribute names already known to be valid; the hot path checks membership only.
_VALID_NAMES: set[str] = set(CONTEXT_ATTRIBUTES)
_MAX_CACHED_NAMES = 4096


_SCALAR_TYPES = frozenset((str, int, bool))


def _fast_event(d: dict[str, Any]) -> CloudEvent | None:
    """The event of a well-formed JSON form, or ``None`` to take the checked path.

    Whole-dict operations run in C: a copy, a key-set inclusion, and a ``join`` that
    succeeds only when every attribute is a string (else a set of value types).
    """
    attrs = d.copy()
    data = attrs.pop("data", None)
    if "data_base64" in attrs or not _VALID_NAMES.issuperset(attrs):
        return None
    try:
        "".join([*attrs.values()])  # every attribute a string: the common case
    except TypeError:
        if not set(map(type, attrs.values())) <= _SCALAR_TYPES:
            return None
        if type(attrs.get("id")) is not str or type(attrs.get("source")) is not str:
            return None
        if type(attrs.get("type")) is not str:
            return None
    if attrs.get("specversion") != SPECVERSION:
        return None
    if not (attrs.get("id") and attrs.get("source") and attrs.get("type")):
        return None
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
        elif k == "data_base64":
            if not isinstance(v, str):
                problems.append("data_base64 must be a string")
                continue
            try:
                data = base64.b64decode(v, validate=True)
            except ValueError:
                problems.append("data_base64 is not valid base64")
        elif isinstance(v, (str, bool, int)) and not isinstance(v, float):
            if k not in _VALID_NAMES and not is_valid_extension_name(k):
                problems.append(f"invalid attribute name {k!r} (lowercase letters and digits, at most 20)")
            else:
                if len(_VALID_NAMES) < _MAX_CACHED_NAMES:
                    _VALID_NAMES.add(k)
                attrs[k] = v
        elif v is None:
            continue  # null attributes are absent (CloudEvents JSON format, 3.1)
        else:
            problems.append(f"attribute {k!r} must be a string, integer or boolean, got {_json_type(v)}")
    if "data" in d and "data_base64" in d:
        problems.append("both data and data_base64 are present")
    if "specversion" not in attrs:
        if default_specversion:
            attrs["specversion"] = SPECVERSION
        else:
            problems.append("missing required attribute 'specversion'")
    elif attrs["specversion"] != SPECVERSION:
        problems.append(f"unsupported specversion {attrs['specversion']!r} (expected '1.0')")
    for name in REQUIRED:
        v = attrs.get(name)
        if v is None:
            problems.append(f"missing required attribute {name!r}")
        elif not isinstance(v, str) or not v:
            problems.append(f"attribute {name!r} must be a non-empty string")
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


def from_json(raw: bytes | str) -> CloudEvent:
    """Parse one structured CloudEvent (JSON text); raise :class:`EventError`."""
    try:
        d = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise EventError(f"not valid JSON: {e}") from None
    if type(d) is dict:
        event = _fast_event(d)
        if event is not None:
            if event.data is not None and len(d) == len(event.attributes) + 1:
                event._form = d  # exactly the JSON form: valid attributes plus data
            return event
    return _from_json_dict_checked(d, False)


def to_json(event: CloudEvent) -> bytes:
    """The CloudEvents JSON format as UTF-8 bytes."""
    return orjson.dumps(event.json_form())


# --------------------------------------------------------------------------- Beam coder

_TAG_NONE, _TAG_JSON, _TAG_BYTES, _TAG_PICKLE, _TAG_BATCH = 0, 1, 2, 3, 4
_HEADER = struct.Struct(">IB")
_LENGTH = struct.Struct(">I")


class CloudEventCoder(coders.Coder):
    """Deterministic coder: sorted-key JSON attributes, then tagged data.

    Layout: ``u32 len(attrs_json) | u8 tag | attrs_json | payload`` where the tag
    says whether data is absent, JSON (sorted keys) or raw bytes. An event that
    JSON cannot hold (e.g. an integer beyond 64 bits from user code) falls back
    to a pickle of the whole event rather than failing the bundle. An
    :class:`EventBatch` is ``u32 count | u8 tag`` and each event's encoding after its
    ``u32`` length.
    """

    def encode(self, value: CloudEvent | EventBatch) -> bytes:
        if type(value) is EventBatch:
            parts = [_HEADER.pack(len(value), _TAG_BATCH)]
            for event in value:
                one = self.encode(event)
                parts.append(_LENGTH.pack(len(one)))
                parts.append(one)
            return b"".join(parts)
        assert isinstance(value, CloudEvent)
        try:
            return self._encode(value)
        except (TypeError, orjson.JSONEncodeError):
            return _HEADER.pack(0, _TAG_PICKLE) + pickle.dumps((value.attributes, value.data), protocol=5)

    def _encode(self, value: CloudEvent) -> bytes:
        attrs = orjson.dumps(value.attributes, option=orjson.OPT_SORT_KEYS)
        data = value.data
        if data is None:
            return _HEADER.pack(len(attrs), _TAG_NONE) + attrs
        if isinstance(data, (bytes, bytearray, memoryview)):
            return _HEADER.pack(len(attrs), _TAG_BYTES) + attrs + bytes(data)
        return _HEADER.pack(len(attrs), _TAG_JSON) + attrs + orjson.dumps(data, option=orjson.OPT_SORT_KEYS)

    def decode(self, encoded: bytes) -> CloudEvent | EventBatch:  # type: ignore[override]
        n, tag = _HEADER.unpack_from(encoded)
        start = _HEADER.size
        if tag == _TAG_BATCH:
            batch = EventBatch()
            for _ in range(n):
                (size,) = _LENGTH.unpack_from(encoded, start)
                start += _LENGTH.size
                batch.append(self.decode(encoded[start : start + size]))
                start += size
            return batch
        if tag == _TAG_PICKLE:
            return CloudEvent(*pickle.loads(encoded[start:]))
        attrs = orjson.loads(encoded[start : start + n])
        rest = encoded[start + n :]
        if tag == _TAG_NONE:
            data = None
        elif tag == _TAG_BYTES:
            data = bytes(rest)
        else:
            data = orjson.loads(rest)
        return CloudEvent(attrs, data)

    def is_deterministic(self) -> bool:
        return True

    def to_type_hint(self) -> type:
        return CloudEvent

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other)

    def __hash__(self) -> int:
        return hash(type(self))


coders.registry.register_coder(CloudEvent, CloudEventCoder)


# --------------------------------------------------------------------------- dead letters


def dead_letter(
    event: CloudEvent, error: BaseException | str, stage: str, trigger: str = "", step: str = ""
) -> CloudEvent:
    """The original event plus the four ``meshline*`` error extensions (SPEC §5).

    The message never carries a credential: secret values this process knows and
    URL passwords are masked (:func:`meshline.secrets.mask`).
    """
    message = mask(error if isinstance(error, str) else _error_message(error))
    encoded = message.encode("utf-8")
    if len(encoded) > MAX_ERROR_BYTES:
        message = encoded[: MAX_ERROR_BYTES - 3].decode("utf-8", "ignore") + "..."
    attrs = dict(event.attributes)
    attrs["meshlineerror"] = message
    attrs["meshlineerrorstage"] = stage
    attrs["meshlinetrigger"] = trigger
    attrs["meshlinestep"] = step
    return CloudEvent(attrs, event.data)


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
    return orjson.dumps(data)


def decode_data(body: bytes | None, content_type: str | None) -> Any:
    """A message body as event data: JSON for JSON content types, text for text/*, else bytes."""
    if not body:
        return None
    if content_type is None or _is_json_content_type(content_type):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            if content_type is not None:
                raise EventError("body is not valid JSON although its content type says so") from None
            return bytes(body)
    if content_type.lower().startswith("text/"):
        try:
            return bytes(body).decode("utf-8")
        except UnicodeDecodeError:
            return bytes(body)
    return bytes(body)


def _attr_str(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


# --------------------------------------------------------------------------- HTTP binding

# Per the HTTP binding, header values are percent-encoded outside printable ASCII
# (and '%', '"'). quote() with this safe set encodes exactly those.
_HTTP_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '%"')


def to_http_binary(event: CloudEvent) -> tuple[dict[str, str], bytes]:
    """Binary mode: ``ce-*`` headers plus the data as body."""
    headers: dict[str, str] = {}
    for k, v in event.attributes.items():
        if k == "datacontenttype":
            headers["content-type"] = v
        else:
            headers["ce-" + k] = quote(_attr_str(v), safe=_HTTP_SAFE)
    if "content-type" not in headers and event.data is not None:
        if isinstance(event.data, (bytes, bytearray, memoryview)):
            headers["content-type"] = "application/octet-stream"
        else:
            headers["content-type"] = "application/json"
    return headers, encode_data(event)


def to_http_structured(event: CloudEvent) -> tuple[dict[str, str], bytes]:
    """Structured mode: the JSON format as body."""
    return {"content-type": STRUCTURED_CT + "; charset=utf-8"}, to_json(event)


def from_http(headers: Mapping[str, str], body: bytes) -> list[CloudEvent] | None:
    """Events in an HTTP message (binary, structured or batch mode).

    Returns ``None`` when the message is not a CloudEvent at all (so a caller can
    wrap it) and raises :class:`EventError` when it claims to be one but is broken.
    """
    h = {k.lower(): v for k, v in headers.items()}
    ct = h.get("content-type", "")
    media = ct.split(";", 1)[0].strip().lower()
    if media == STRUCTURED_CT:
        return [from_json(body)]
    if media == BATCH_CT:
        try:
            items = orjson.loads(body)
        except orjson.JSONDecodeError as e:
            raise EventError(f"batch is not valid JSON: {e}") from None
        if not isinstance(items, list):
            raise EventError("a CloudEvents batch must be a JSON array")
        return [from_json_dict(i) for i in items]
    if "ce-specversion" not in h:
        return None
    attrs: dict[str, Any] = {}
    for k, v in h.items():
        if k.startswith("ce-"):
            attrs[k[3:]] = unquote(v)
    if ct:
        attrs["datacontenttype"] = ct
    event = from_json_dict(attrs)
    event.data = decode_data(body, ct or None)
    return [event]


# --------------------------------------------------------------------------- Kafka binding


def _kafka_key(event: CloudEvent, key_attribute: str | None) -> bytes | None:
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
_BYTES_CT_HEADER = ("content-type", b"application/octet-stream")


def _kafka_header_name(attribute: str) -> str:
    name = "ce_" + attribute
    if len(_KAFKA_HEADER_NAMES) < _MAX_CACHED_NAMES:
        _KAFKA_HEADER_NAMES[attribute] = name
    return name


def to_kafka_binary(
    event: CloudEvent, key_attribute: str | None = None
) -> tuple[bytes | None, bytes, list[tuple[str, bytes]]]:
    """Binary mode: ``ce_*`` headers, data as value; key = ``partitionkey``/``subject``/``id``."""
    attrs = event.attributes
    names = _KAFKA_HEADER_NAMES
    headers: list[tuple[str, bytes]] = []
    add = headers.append
    try:  # the common case: string attributes whose header names are cached
        for k, v in attrs.items():
            add((names[k], v.encode()))
    except (KeyError, AttributeError):
        headers = [
            (names.get(k) or _kafka_header_name(k), v.encode() if type(v) is str else _attr_str(v).encode())
            for k, v in attrs.items()
        ]
    data = event.data
    value = orjson.dumps(data) if type(data) is dict or type(data) is list else encode_data(event)
    if data is not None and "datacontenttype" not in attrs:
        headers.append(_BYTES_CT_HEADER if isinstance(data, (bytes, bytearray)) else _JSON_CT_HEADER)
    return _kafka_key(event, key_attribute), value, headers


def to_kafka_structured(
    event: CloudEvent, key_attribute: str | None = None
) -> tuple[bytes | None, bytes, list[tuple[str, bytes]]]:
    """Structured mode: the JSON format as value."""
    return _kafka_key(event, key_attribute), to_json(event), [("content-type", STRUCTURED_CT.encode())]


def from_kafka(
    key: bytes | None, value: bytes | None, headers: Iterable[tuple[str, bytes | None]] | None
) -> CloudEvent | None:
    """The event in a Kafka record, or ``None`` when the record is not a CloudEvent."""
    h: dict[str, str] = {}
    for k, v in headers or ():
        if v is not None:
            h[k.lower()] = v.decode("utf-8", "replace") if isinstance(v, (bytes, bytearray)) else str(v)
    ct = h.get("content-type")
    if ct is not None and ct.split(";", 1)[0].strip().lower() == STRUCTURED_CT:
        return from_json(value or b"")
    if "ce_specversion" not in h:
        return None
    attrs: dict[str, Any] = {k[3:]: v for k, v in h.items() if k.startswith("ce_")}
    if ct:
        attrs["datacontenttype"] = ct
    if key is not None and "partitionkey" not in attrs:
        attrs["partitionkey"] = key.decode("utf-8", "replace")
    event = from_json_dict(attrs)
    event.data = decode_data(value, ct)
    return event
