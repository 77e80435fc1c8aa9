"""Which CloudEvents context attributes are valid (CloudEvents 1.0.2, "Context Attributes").

One question per function, answered exactly as the specification words it:

- names (*Attribute Naming Convention*): lowercase ASCII letters and digits, at least
  one. Longer than 20 characters is only a SHOULD NOT, so such names are accepted;
- values (*Type System*): ``Boolean``, ``Integer`` (signed 32 bits) and ``String``,
  whose disallowed characters are the controls U+0000-U+001F and U+007F-U+009F, the
  Unicode noncharacters and unpaired surrogates; ``URI-reference`` and ``URI`` per RFC
  3986 §4.1 and §3, ``Timestamp`` per RFC 3339 §5.6, media types per RFC 2045 §5.1;
- each context attribute's own constraints (``id``, ``source``, ``type``,
  ``specversion``, ``subject``, ``time``, ``datacontenttype``, ``dataschema``).

:func:`valid` answers yes or no for a whole event's attributes, fast (the hot path of
every decoder); :func:`problems` and :func:`problem` say what is wrong, in words naming
the attribute and the rule. Values that repeat from event to event (names, sources,
content types, schemas) are remembered once valid.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

__all__ = [
    "CONTEXT_ATTRIBUTES",
    "INT_MAX",
    "INT_MIN",
    "KNOWN_NAMES",
    "REQUIRED",
    "SPECVERSION",
    "bad_character",
    "is_media_type",
    "is_name",
    "is_timestamp",
    "is_uri",
    "is_uri_reference",
    "problem",
    "problems",
    "valid",
    "valid_media_type",
    "valid_source",
    "valid_uri",
]

SPECVERSION = "1.0"
REQUIRED = ("id", "source", "type")
CONTEXT_ATTRIBUTES = frozenset(
    ("specversion", "id", "source", "type", "subject", "time", "datacontenttype", "dataschema")
)
INT_MIN, INT_MAX = -(2**31), 2**31 - 1  # Type System: Integer, a signed 32-bit two's complement

_NAME = re.compile(r"[a-z0-9]+")


def is_name(name: object) -> bool:
    """A valid attribute name: ``[a-z0-9]+`` — the whole string, so ``"abc\\n"`` is not one."""
    return type(name) is str and _NAME.fullmatch(name) is not None


# --------------------------------------------------------------------------- String


def _disallowed() -> str:
    ranges = ["\x00-\x1f", "\x7f-\x9f", "\ufdd0-\ufdef", "\ud800-\udfff"]
    for plane in range(17):  # U+xFFFE and U+xFFFF of every plane are noncharacters
        base = plane << 16
        ranges.append(f"{chr(base | 0xFFFE)}{chr(base | 0xFFFF)}")
    return "[" + "".join(ranges) + "]"


_BAD_CHARACTER = re.compile(_disallowed())


def bad_character(text: str) -> str | None:
    """The first character the String type disallows, described (``None`` when there is none).

    ``str.isprintable`` (C, no allocation) is true for nearly every valid string, so the
    regular expression runs only for the rest (spaces other than U+0020, format characters…).
    """
    if text.isprintable():
        return None
    m = _BAD_CHARACTER.search(text)
    if m is None:
        return None
    c = ord(m.group())
    if c < 0x20 or 0x7F <= c <= 0x9F:
        kind = "a control character"
    elif 0xD800 <= c <= 0xDFFF:
        kind = "an unpaired surrogate"
    else:
        kind = "a Unicode noncharacter"
    return f"U+{c:04X}, {kind}"


# --------------------------------------------------------------------------- Timestamp

# RFC 3339 §5.6 date-time; "T" and "Z" may be lower case (§5.6, note); a leap second is
# syntactically 60. Fixed widths, so the day is always t[8:10]: a string that matches and
# whose day is at most 28 is a valid timestamp (the hot path checks just that).
_TIMESTAMP = re.compile(
    r"[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])[Tt]"
    r"(?:[01][0-9]|2[0-3]):[0-5][0-9]:(?:[0-5][0-9]|60)(?:\.[0-9]+)?"
    r"(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
)
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def is_timestamp(t: object) -> bool:
    """An RFC 3339 date-time with its offset, on a day that exists (no 30 February)."""
    if type(t) is not str or _TIMESTAMP.fullmatch(t) is None:
        return False
    if t[8:10] <= "28":
        return True
    year, month, day = int(t[:4]), int(t[5:7]), int(t[8:10])
    if month == 2 and day == 29:
        return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    return day <= _MONTH_DAYS[month - 1]


# --------------------------------------------------------------------------- media types

# RFC 2045 §5.1: type "/" subtype *(";" attribute "=" value), value a token or a
# quoted-string; a token is any US-ASCII character but space, controls and tspecials.
_TOKEN = r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+"
_QUOTED = r'"(?:[\t !#-\[\]-~]|\\[\t -~])*"'
_MEDIA_TYPE = re.compile(rf"{_TOKEN}/{_TOKEN}(?:[ \t]*;[ \t]*{_TOKEN}=(?:{_TOKEN}|{_QUOTED}))*")


def is_media_type(ct: object) -> bool:
    """An RFC 2046 media type (``type/subtype`` and parameters), as ``datacontenttype`` must be."""
    return type(ct) is str and _MEDIA_TYPE.fullmatch(ct) is not None


# --------------------------------------------------------------------------- URIs (RFC 3986)

_U = r"A-Za-z0-9\-._~!$&'()*+,;="  # unreserved and sub-delims
_PCT = r"%[0-9A-Fa-f]{2}"
_SEGMENT = rf"(?:[{_U}:@]|{_PCT})*"
_SEGMENT_NZ = rf"(?:[{_U}:@]|{_PCT})+"
_SEGMENT_NZ_NC = rf"(?:[{_U}@]|{_PCT})+"  # no ':' in a relative reference's first segment
_QUERY = rf"(?:[{_U}:@/?]|{_PCT})*"
_AUTHORITY = (
    rf"(?:(?:[{_U}:]|{_PCT})*@)?"  # userinfo
    rf"(?:\[[0-9A-Fa-f:.]+\]|\[[vV][0-9A-Fa-f]+\.[{_U}:]+\]|(?:[{_U}]|{_PCT})*)"  # host
    r"(?::[0-9]*)?"  # port
)
_ABSOLUTE_PATH = rf"/(?:{_SEGMENT_NZ}(?:/{_SEGMENT})*)?"
_HIER_PART = rf"//{_AUTHORITY}(?:/{_SEGMENT})*|{_ABSOLUTE_PATH}|{_SEGMENT_NZ}(?:/{_SEGMENT})*|"
_RELATIVE_PART = rf"//{_AUTHORITY}(?:/{_SEGMENT})*|{_ABSOLUTE_PATH}|{_SEGMENT_NZ_NC}(?:/{_SEGMENT})*|"
_SCHEME = r"[A-Za-z][A-Za-z0-9+\-.]*"
_TAIL = rf"(?:\?{_QUERY})?(?:#{_QUERY})?"
_URI = re.compile(rf"{_SCHEME}:(?:{_HIER_PART}){_TAIL}")
_URI_REFERENCE = re.compile(rf"(?:{_SCHEME}:(?:{_HIER_PART})|(?:{_RELATIVE_PART})){_TAIL}")
_IP_LITERAL = re.compile(r"(?:[A-Za-z][A-Za-z0-9+\-.]*:)?//(?:[^@/?#\[]*@)?\[([0-9A-Fa-f:.]+)\]")


def _ip_literal_ok(s: str) -> bool:
    m = _IP_LITERAL.match(s)
    if m is None:
        return True  # no IPv6 literal (an IPvFuture one is checked by the syntax alone)
    try:
        ipaddress.IPv6Address(m.group(1))
    except ValueError:
        return False
    return True


def is_uri_reference(s: object) -> bool:
    """A non-empty RFC 3986 URI-reference (§4.1): an absolute URI or a relative reference."""
    return type(s) is str and s != "" and _URI_REFERENCE.fullmatch(s) is not None and _ip_literal_ok(s)


def is_uri(s: object) -> bool:
    """A non-empty RFC 3986 URI: a scheme, then the rest (§3; a fragment is allowed).

    The Type System names "Absolute URI" (§4.3, no fragment), while the specification's own
    JSON Schema checks ``dataschema`` as ``format: uri`` (fragment allowed): schema ids such
    as ``https://example.com/schemas#order`` are common, so the fragment is accepted.
    """
    return type(s) is str and _URI.fullmatch(s) is not None and _ip_literal_ok(s)


# --------------------------------------------------------------------------- caches

_MAX_CACHED = 4096
_SOURCES: set[str] = set()  # values known to be valid (the hot path looks them up inline)
_MEDIA_TYPES: set[str] = set()
_URIS: set[str] = set()


def _remember(cache: set[str], value: str) -> None:
    if len(cache) < _MAX_CACHED:
        cache.add(value)


def valid_source(s: str) -> bool:
    if s in _SOURCES:
        return True
    if is_uri_reference(s) and bad_character(s) is None:
        _remember(_SOURCES, s)
        return True
    return False


def valid_media_type(ct: str) -> bool:
    if ct in _MEDIA_TYPES:
        return True
    if is_media_type(ct):
        _remember(_MEDIA_TYPES, ct)
        return True
    return False


def valid_uri(s: str) -> bool:
    if s in _URIS:
        return True
    if is_uri(s):
        _remember(_URIS, s)
        return True
    return False


# --------------------------------------------------------------------------- one attribute


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def problem(name: str, value: Any) -> str | None:
    """What is wrong with attribute ``name`` = ``value`` (``None``: nothing).

    ``value`` is what the JSON format holds (``str``, ``int`` or ``bool``; ``None`` is
    absent and checked by the caller). The message names the attribute and the rule.
    """
    if not is_name(name):
        return (
            f"invalid attribute name {_shown(name)}: attribute names are lowercase letters a-z and digits 0-9"
        )
    if type(value) is bool:
        if name in CONTEXT_ATTRIBUTES:
            return f"attribute {name!r} must be a string, got a boolean"
        return None
    if type(value) is int:
        if name in CONTEXT_ATTRIBUTES:
            return f"attribute {name!r} must be a string, got an integer"
        if not INT_MIN <= value <= INT_MAX:
            return (
                f"attribute {name!r}: {value} is outside the CloudEvents Integer range "
                "(-2147483648 to 2147483647, signed 32 bits)"
            )
        return None
    if type(value) is not str:
        return f"attribute {name!r} must be a string, integer or boolean, got {type(value).__name__}"
    bad = bad_character(value)
    if bad is not None:
        return f"attribute {name!r} contains a character the CloudEvents String type disallows ({bad})"
    if name in REQUIRED or name == "specversion" or name == "subject":
        if not value:
            return f"attribute {name!r} must be a non-empty string"
        if name == "specversion" and value != SPECVERSION:
            return f"unsupported specversion {_shown(value)} (expected '1.0')"
        if name == "source" and not is_uri_reference(value):
            return f"attribute 'source' must be a URI-reference (RFC 3986), got {_shown(value)}"
    elif name == "time" and not is_timestamp(value):
        return f"attribute 'time' must be an RFC 3339 timestamp with a time offset, got {_shown(value)}"
    elif name == "datacontenttype" and not is_media_type(value):
        return (
            f"attribute 'datacontenttype' must be an RFC 2046 media type (type/subtype), got {_shown(value)}"
        )
    elif name == "dataschema" and not is_uri(value):
        return f"attribute 'dataschema' must be a non-empty absolute URI (RFC 3986), got {_shown(value)}"
    return None


# --------------------------------------------------------------------------- a whole event's attributes

# Attribute names already known to be valid; the hot path checks membership only.
# ("data" is never one: it names the data member in the JSON format.)
KNOWN_NAMES: set[str] = set(CONTEXT_ATTRIBUTES)
_TIMESTAMP_SHAPE = _TIMESTAMP.fullmatch


def valid(attrs: dict[str, Any], unescaped: bool = False) -> bool:
    """True when every attribute is valid (the common case); ``False`` says "look closer".

    Whole-dict operations run in C: a key-set inclusion and a ``join`` that succeeds
    only when every value is a string; then one scan of the joined text for characters
    the String type disallows (``unescaped``: the caller read the attributes from JSON
    text holding no backslash, so ASCII text needs no scan), and one check per attribute
    that has a syntax of its own
    (``source``, ``datacontenttype`` and ``dataschema`` are looked up among values seen
    before; ``time`` is one regular expression, ~0.3 µs).
    """
    if not KNOWN_NAMES.issuperset(attrs):
        return False
    if _MIXED[0]:  # the last event had an integer or boolean extension: so may this one
        scalars = _scalar_text(attrs)
        if scalars is None:
            return False
        text = scalars
    else:
        try:
            text = "".join([*attrs.values()])  # every attribute a string: the common case
        except TypeError:  # (raising costs ~0.6 µs: not once per event of a stream of such events)
            scalars = _scalar_text(attrs)
            if scalars is None:
                return False
            text = scalars
    if unescaped and text.isascii():
        # Read from JSON text without a backslash: no escape made a control character, and
        # JSON forbids them raw; in ASCII, DEL is the one disallowed character left.
        if "\x7f" in text:
            return False
    elif not text.isprintable() and bad_character(text) is not None:
        return False
    if attrs.get("specversion") != SPECVERSION or not attrs.get("id") or not attrs.get("type"):
        return False
    source = attrs.get("source")
    if source not in _SOURCES and (not source or not valid_source(source)):
        return False
    if len(attrs) > 4:  # optional attributes
        t = attrs.get("time")
        if t is not None and (_TIMESTAMP_SHAPE(t) is None or (t[8:10] > "28" and not is_timestamp(t))):
            return False
        ct = attrs.get("datacontenttype")
        if ct is not None and ct not in _MEDIA_TYPES and not valid_media_type(ct):
            return False
        if attrs.get("subject") == "":
            return False
        schema = attrs.get("dataschema")
        if schema is not None and not valid_uri(schema):
            return False
    return True


def _scalar_text(attrs: dict[str, Any]) -> str | None:
    """The string values joined; ``None`` when a value is neither a string, a Boolean nor a
    32-bit Integer, or a context attribute is not a string."""
    parts = [v for v in attrs.values() if type(v) is str]
    _MIXED[0] = mixed = len(parts) < len(attrs)
    if mixed:
        for k, v in attrs.items():
            if type(v) is not str and (
                k in CONTEXT_ATTRIBUTES
                or not ((type(v) is int and INT_MIN <= v <= INT_MAX) or type(v) is bool)
            ):
                return None
    return "".join(parts)


# Whether the last attributes checked held a value that is not a string (see valid).
_MIXED = [False]


def problems(attrs: dict[str, Any]) -> list[str]:
    """Every problem of an attributes dict (names, types, values, required attributes)."""
    found = []
    for k, v in attrs.items():
        if k == "data" or k == "data_base64":
            found.append(f"{k!r} is not an attribute name: it names the event data")
            continue
        p = problem(k, v)
        if p is not None:
            found.append(p)
        elif k not in KNOWN_NAMES and len(KNOWN_NAMES) < _MAX_CACHED:
            KNOWN_NAMES.add(k)
    if "specversion" not in attrs:
        found.append("missing required attribute 'specversion'")
    found.extend(f"missing required attribute {name!r}" for name in REQUIRED if name not in attrs)
    return found
