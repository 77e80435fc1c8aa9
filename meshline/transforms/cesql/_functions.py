"""The built-in CESQL functions and their dispatch by name and arity.

A function has fixed parameter types and, optionally, a type for any further
(variadic) arguments; ``None`` as a type means "any value, no implicit cast".
Its implementation is called as ``impl(errors, column, *args)`` with arguments
already cast, appends its own errors, and always returns a value of its return
type (spec 3.5.3).

Beyond the spec's tables (which list only the string and math functions), the
TCK and Meshline rely on the casting functions: ``INT(x)``, ``BOOL(x)`` and
``STRING(x)`` cast any value explicitly (spec 3.7 table); ``IS_INT(x)`` and
``IS_BOOL(x)`` take a String (other values are cast to it first) and tell whether
``INT``/``BOOL`` would accept it without an error; ``IS_STRING(x)`` tells whether
the value is a String.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from meshline.transforms.cesql._errors import FUNCTION_EVALUATION, MATH, CesqlError
from meshline.transforms.cesql._values import (
    INT_MAX,
    INT_MIN,
    Value,
    explicit_bool,
    parse_bool,
    parse_int,
    to_int,
    to_str,
)

__all__ = ["BUILTINS", "Function", "arities", "resolve"]

Errors = list[CesqlError]

# Unicode White_Space (TRIM); Python's str.strip() would also strip the control characters U+001C..U+001F.
_WHITESPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)


@dataclass(frozen=True, slots=True)
class Function:
    name: str
    params: tuple[type | None, ...]
    returns: type
    impl: Callable[..., Value]
    variadic: bool = False
    rest: type | None = None  # type of the variadic arguments

    def accepts(self, arity: int) -> bool:
        return arity >= len(self.params) if self.variadic else arity == len(self.params)

    def param_types(self, arity: int) -> tuple[type | None, ...]:
        return self.params + (self.rest,) * (arity - len(self.params))

    def describe_arity(self) -> str:
        return f"{len(self.params)} or more" if self.variadic else str(len(self.params))


def _evaluation_error(errors: Errors, column: int, message: str) -> None:
    errors.append(CesqlError(FUNCTION_EVALUATION, message, column))


def _abs(errors: Errors, column: int, x: int) -> int:
    if x == INT_MIN:
        errors.append(CesqlError(MATH, "ABS(-2147483648) is outside the 32-bit range", column))
        return INT_MAX
    return abs(x)


def _length(errors: Errors, column: int, x: str) -> int:
    return len(x)


def _concat(errors: Errors, column: int, *xs: str) -> str:
    return "".join(xs)


def _concat_ws(errors: Errors, column: int, delimiter: str, *xs: str) -> str:
    return delimiter.join(xs)


def _lower(errors: Errors, column: int, x: str) -> str:
    return x.lower()


def _upper(errors: Errors, column: int, x: str) -> str:
    return x.upper()


def _trim(errors: Errors, column: int, x: str) -> str:
    return x.strip(_WHITESPACE)


def _left(errors: Errors, column: int, x: str, y: int) -> str:
    if y < 0:
        _evaluation_error(errors, column, f"LEFT: the length must not be negative, got {y}")
        return x
    return x[:y]


def _right(errors: Errors, column: int, x: str, y: int) -> str:
    if y < 0:
        _evaluation_error(errors, column, f"RIGHT: the length must not be negative, got {y}")
        return x
    return x[len(x) - y :] if y < len(x) else x


def _substring(errors: Errors, column: int, x: str, pos: int, length: int | None = None) -> str:
    size = len(x)
    if pos > size or pos < -size:
        _evaluation_error(errors, column, f"SUBSTRING: position {pos} is outside a string of length {size}")
        return ""
    if length is not None and length < 0:
        _evaluation_error(errors, column, f"SUBSTRING: the length must not be negative, got {length}")
        return ""
    if pos == 0:
        return ""
    start = pos - 1 if pos > 0 else size + pos
    return x[start:] if length is None else x[start : start + length]


def _int(errors: Errors, column: int, x: Value) -> int:
    return to_int(x, errors, column)


def _bool(errors: Errors, column: int, x: Value) -> bool:
    return explicit_bool(x, errors, column)


def _string(errors: Errors, column: int, x: Value) -> str:
    return to_str(x, errors, column)


def _is_int(errors: Errors, column: int, x: str) -> bool:
    return parse_int(x) is not None


def _is_bool(errors: Errors, column: int, x: str) -> bool:
    return parse_bool(x) is not None


def _is_string(errors: Errors, column: int, x: Value) -> bool:
    return x.__class__ is str


_DEFINITIONS = (
    Function("ABS", (int,), int, _abs),
    Function("LENGTH", (str,), int, _length),
    Function("CONCAT", (), str, _concat, variadic=True, rest=str),
    Function("CONCAT_WS", (str,), str, _concat_ws, variadic=True, rest=str),
    Function("LOWER", (str,), str, _lower),
    Function("UPPER", (str,), str, _upper),
    Function("TRIM", (str,), str, _trim),
    Function("LEFT", (str, int), str, _left),
    Function("RIGHT", (str, int), str, _right),
    Function("SUBSTRING", (str, int), str, _substring),
    Function("SUBSTRING", (str, int, int), str, _substring),
    Function("INT", (None,), int, _int),
    Function("BOOL", (None,), bool, _bool),
    Function("STRING", (None,), str, _string),
    Function("IS_INT", (str,), bool, _is_int),
    Function("IS_BOOL", (str,), bool, _is_bool),
    Function("IS_STRING", (None,), bool, _is_string),
)

BUILTINS: dict[str, tuple[Function, ...]] = {}
for _definition in _DEFINITIONS:
    BUILTINS[_definition.name] = (*BUILTINS.get(_definition.name, ()), _definition)


def resolve(name: str, arity: int) -> Function | None:
    """The overload of ``name`` (upper case) taking ``arity`` arguments, or None."""
    for function in BUILTINS.get(name, ()):
        if function.accepts(arity):
            return function
    return None


def arities(name: str) -> str:
    """How many arguments ``name`` takes, for an error message ("" when there is no such function)."""
    return " or ".join(f.describe_arity() for f in BUILTINS.get(name, ()))
