"""The CloudEvent element type, the CloudEvents JSON format and dead letters.

Every element between Meshline stages is a :class:`CloudEvent` (spec 1.0.2):
``attributes`` holds the context attributes and extensions (``str``, ``int`` or
``bool`` values) and ``data`` holds the payload — a JSON value, ``bytes`` for
binary data (``data_base64`` in the JSON format), or ``None`` when absent.

This module also carries the CloudEvents JSON format (both ways) and
:func:`dead_letter`; the HTTP and Kafka protocol bindings (binary and structured
modes) the connectors share are in :mod:`meshline.bindings`, the Beam coder in
:mod:`meshline.coder`. Every decoder accepts exactly the events the specification
calls valid (:mod:`meshline.attributes` says which attributes are) and raises
:class:`EventError` naming the attribute and the rule for the others; see
``docs/cloudevents.md`` for what each binding accepts and refuses.

Only this module touches a :class:`CloudEvent`'s slots; others use its public API
(:meth:`CloudEvent.json_form`, :meth:`CloudEvent.known_form`, the ``form``
argument of its constructor). A test checks it.

Why not the ``cloudevents`` package's event class: it validates and copies on
every construction and has no deterministic Beam coder; a slotted class with two
fields costs a fraction of that on the hot path. The package is used in the tests
as an independent implementation of the same bindings (interoperability checks).
"""

from __future__ import annotations

import base64
from typing import Any

import orjson

from meshline import observe
from meshline.attributes import (
    CONTEXT_ATTRIBUTES,
    SPECVERSION,
    bad_character,
    is_name,
)
from meshline.attributes import problems as attribute_problems
from meshline.attributes import valid as valid_attributes
from meshline.errors import EventError
from meshline.jsontext import canonical, dumps, parse_json, read_exact
from meshline.secrets import mask

__all__ = [
    "BATCH_CT",
    "CONTEXT_ATTRIBUTES",
    "ERROR_EXTENSIONS",
    "CloudEvent",
    "EventBatch",
    "dead_letter",
    "each_event",
    "event_from_attributes",
    "from_json",
    "from_json_dict",
    "is_valid_extension_name",
    "parse_json",
    "STRUCTURED_CT",
    "to_json",
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


class CloudEvent:
    """One CloudEvent: context attributes plus data.

    ``attributes`` must hold ``specversion``, ``id``, ``source`` and ``type``.
    Events are treated as immutable once emitted: transformations copy, never
    mutate, because one event may fan out to several triggers.
    """

    __slots__ = ("_form", "attributes", "data")

    def __init__(self, attributes: dict[str, Any], data: Any = None, form: dict[str, Any] | None = None):
        self.attributes = attributes
        self.data = data
        # The JSON form, once known (see :meth:`json_form`); never part of the event's value.
        # A caller that holds it already (a parsed JSON line, a jq program's output) passes it:
        # it must be exactly what :meth:`to_dict` gives, and is shared, never modified.
        self._form = form

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

    def known_form(self) -> dict[str, Any] | None:
        """The JSON form if it is known already (:meth:`json_form` was called, or it was
        given), else ``None``: for code that has a cheaper way than building it."""
        return self._form

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
                if data is not None and len(d) == len(attrs) + 1:
                    return CloudEvent(attrs, data, d)  # d is exactly the JSON form: attributes plus data
                return CloudEvent(attrs, data)
    return _from_json_dict_checked(read_exact(raw, "object"), False)


def to_json(event: CloudEvent) -> bytes:
    """The CloudEvents JSON format as UTF-8 bytes."""
    try:
        return orjson.dumps(event.json_form())
    except orjson.JSONEncodeError:
        return dumps(event.json_form())  # integers beyond 64 bits


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
    dead = CloudEvent(attrs, event.data)
    if observe.ENABLED:  # the live page's dead-letter panel (meshline run --ui)
        observe.record_dead_letter(dead)
    return dead


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
