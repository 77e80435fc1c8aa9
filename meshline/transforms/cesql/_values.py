"""CESQL values (``bool``, ``int``, ``str``), their casts, and how attribute values enter the language.

Casts take the value, the evaluation's error list and the column to blame. A cast
that fails appends a ``cast`` error and returns the zero value of the target type
(spec 3.7: "the cast result is false" / "an error is returned along with a value
of 0").

Integer -> Boolean: the explicit ``BOOL(x)`` follows the spec's table (0 is
false, anything else true), but an *implicit* Integer -> Boolean cast (``NOT 10``,
``1 AND x``, ``1 = TRUE``) is a cast error whose result is false, because that is
what the TCK requires (``not_operator.yaml``: "Invalid int cast").
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable

from meshline.transforms.cesql._errors import CAST, CesqlError

__all__ = [
    "CASTS",
    "INT_MAX",
    "INT_MIN",
    "TAINTED",
    "TYPE_NAMES",
    "ZERO",
    "Value",
    "describe",
    "explicit_bool",
    "normalize",
    "parse_bool",
    "parse_int",
    "to_bool",
    "to_int",
    "to_str",
]

Value = bool | int | str
INT_MIN = -(2**31)
INT_MAX = 2**31 - 1
TYPE_NAMES: dict[type, str] = {bool: "Boolean", int: "Integer", str: "String"}
ZERO: dict[type, Value] = {bool: False, int: 0, str: ""}

_INT_TEXT = re.compile(r"[+-]?[0-9]+")
_MAX_INT_DIGITS = 10
_MAX_SHOWN = 60  # characters of a value quoted in an error message


class _Tainted:
    """What an operand evaluates to when it reported an error itself (see the package docstring)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "TAINTED"


TAINTED = _Tainted()


def describe(value: object) -> str:
    """``Integer 5``, ``String 'abc'``, ``Boolean true`` — for error messages."""
    if value.__class__ is bool:
        return f"Boolean {'true' if value else 'false'}"
    text = repr(value)
    if len(text) > _MAX_SHOWN:
        text = text[: _MAX_SHOWN - 3] + "..."
    return f"{TYPE_NAMES.get(type(value), type(value).__name__)} {text}"


def parse_int(text: str) -> int | None:
    """The 32-bit base-10 integer ``text`` spells (optional sign), or None."""
    if not _INT_TEXT.fullmatch(text):
        return None
    digits = text.lstrip("+-").lstrip("0") or "0"
    if len(digits) > _MAX_INT_DIGITS:
        return None
    value = -int(digits) if text[0] == "-" else int(digits)
    return value if INT_MIN <= value <= INT_MAX else None


def parse_bool(text: str) -> bool | None:
    """True/False when the lower case form of ``text`` is exactly "true"/"false", else None."""
    lowered = text.lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    return None


def _cast_error(value: Value, target: type, column: int) -> CesqlError:
    return CesqlError(CAST, f"cannot cast {describe(value)} to {TYPE_NAMES[target]}", column)


def to_int(value: Value, errors: list[CesqlError], column: int) -> int:
    if value.__class__ is int:
        return value
    if value.__class__ is bool:
        return 1 if value else 0
    parsed = parse_int(value)  # type: ignore[arg-type]
    if parsed is None:
        errors.append(_cast_error(value, int, column))
        return 0
    return parsed


def to_bool(value: Value, errors: list[CesqlError], column: int) -> bool:
    """Implicit cast to Boolean: Integer is refused (see the module docstring)."""
    if value.__class__ is bool:
        return value
    parsed = parse_bool(value) if value.__class__ is str else None
    if parsed is None:
        errors.append(_cast_error(value, bool, column))
        return False
    return parsed


def explicit_bool(value: Value, errors: list[CesqlError], column: int) -> bool:
    """``BOOL(x)``: like the implicit cast, but Integer casts as 0 -> false, other -> true."""
    if value.__class__ is int:
        return value != 0
    return to_bool(value, errors, column)


def to_str(value: Value, errors: list[CesqlError], column: int) -> str:
    if value.__class__ is str:
        return value
    if value.__class__ is bool:
        return "true" if value else "false"
    return str(value)


CASTS: dict[type, Callable[[Value, list[CesqlError], int], Value]] = {int: to_int, bool: to_bool, str: to_str}


def normalize(value: object) -> Value | None:
    """An attribute value as a CESQL value; None when the attribute is absent (JSON null).

    Values outside the three primitive types are represented as String (spec 3.2),
    in their CloudEvents JSON spelling where there is one: an integer outside the
    32-bit range, bytes as base64, a timestamp in ISO 8601.
    """
    if value is None or value.__class__ is str or value.__class__ is bool:
        return value
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value) if INT_MIN <= value <= INT_MAX else str(int(value))
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(value).decode("ascii")
    isoformat = getattr(value, "isoformat", None)
    if callable(isoformat):
        return str(isoformat())
    return str(value)
