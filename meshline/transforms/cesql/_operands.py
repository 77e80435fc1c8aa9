"""How an operator reads its operands: the compiled-subexpression record and its *getters*.

An operator reads each operand through a getter built for the type it wants: a
literal's getter returns the value pre-cast, an attribute's getter fetches,
normalizes and casts in one step, a subexpression's getter casts its result.

A getter returns ``TAINTED`` instead of a value when the operand reported an
error of its own — a missing attribute, or any error inside a subexpression,
seen as the error list growing while it ran. The operator then returns the zero
value of its return type without computing (spec 3.2: ``1 / missing`` is ``0``
with only the missing-attribute error; TCK: ``true AND (1 != 1 / 0)`` is
``false``). A failed *implicit cast* of an operand is the operator's own error:
the getter appends it and returns the target type's zero value, and the operator
goes on with it (TCK: ``NOT 10`` is ``true`` with a cast error).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from meshline.transforms.cesql._errors import MISSING_ATTRIBUTE, CesqlError
from meshline.transforms.cesql._values import CASTS, INT_MAX, INT_MIN, TAINTED, Value, normalize

__all__ = [
    "NO_CONST",
    "Compiled",
    "Errors",
    "Fn",
    "attribute_getter",
    "constant",
    "fold",
    "getter",
    "getter_can_err",
    "precast",
]

Errors = list[CesqlError]
Fn = Callable[[Mapping[str, Any], Errors], Any]

NO_CONST = object()  # "not a literal"


@dataclass(frozen=True, slots=True)
class Compiled:
    """A compiled subexpression and what the compiler knows about it statically."""

    fn: Fn
    type: type | None  # bool, int or str; None for an attribute (known only at run time)
    column: int
    const: object = NO_CONST  # the value, when the subexpression is a literal (or folded into one)
    attr: str | None = None  # the attribute name, when the subexpression is an attribute
    can_err: bool = True  # whether evaluating it may report an error


def constant(value: Value, column: int) -> Compiled:
    def literal(attributes: Mapping[str, Any], errors: Errors) -> Value:
        return value

    return Compiled(literal, type(value), column, const=value, can_err=False)


def fold(compiled: Compiled, operands: tuple[Compiled, ...]) -> Compiled:
    """Replace an operator over literals by its value, unless evaluating it reports an error."""
    if any(o.const is NO_CONST for o in operands):
        return compiled
    errors: Errors = []
    value = compiled.fn({}, errors)
    return compiled if errors else constant(value, compiled.column)


# -- getters --------------------------------------------------------------------------------------


def precast(operand: Compiled, target: type | None) -> object:
    """A literal operand's value cast to ``target``; ``NO_CONST`` if not a literal or the cast fails."""
    if operand.const is NO_CONST or target is None or operand.type is target:
        return operand.const
    errors: Errors = []
    value = CASTS[target](operand.const, errors, operand.column)  # type: ignore[arg-type]
    return NO_CONST if errors else value


def getter_can_err(operand: Compiled, target: type | None) -> bool:
    if operand.const is not NO_CONST:
        return precast(operand, target) is NO_CONST
    return operand.can_err or (target is not None and target is not str and operand.type is not target)


def getter(operand: Compiled, target: type | None) -> Fn:
    """A function giving ``operand`` cast to ``target`` (None: as it is), or TAINTED (module docstring)."""
    if operand.attr is not None:
        return attribute_getter(operand.attr, target, operand.column)
    if operand.const is not NO_CONST:
        return _const_getter(operand, target)
    fn, column = operand.fn, operand.column
    cast = None if target is None or target is operand.type else CASTS[target]
    if not operand.can_err:
        if cast is None:
            return fn

        def cast_result(attributes: Mapping[str, Any], errors: Errors) -> Any:
            return cast(fn(attributes, errors), errors, column)

        return cast_result

    def guarded(attributes: Mapping[str, Any], errors: Errors) -> Any:
        count = len(errors)
        value = fn(attributes, errors)
        if len(errors) != count:
            return TAINTED
        return value if cast is None else cast(value, errors, column)

    return guarded


def _const_getter(operand: Compiled, target: type | None) -> Fn:
    value = precast(operand, target)
    if value is NO_CONST:  # the cast fails: report it on every evaluation, go on with the zero value
        raw, cast, column = operand.const, CASTS[target], operand.column  # type: ignore[index]

        def failing_cast(attributes: Mapping[str, Any], errors: Errors) -> Any:
            return cast(raw, errors, column)  # type: ignore[arg-type]

        return failing_cast

    def constant(attributes: Mapping[str, Any], errors: Errors) -> Any:
        return value

    return constant


def attribute_getter(name: str, target: type | None, column: int) -> Fn:
    """Fetch, normalize and cast an attribute in one call; the common case is one dict lookup."""
    cast = None if target is None else CASTS[target]

    def slow(value: object, errors: Errors) -> Any:
        value = normalize(value)
        if value is None:
            errors.append(CesqlError(MISSING_ATTRIBUTE, f"missing attribute {name!r}", column))
            return TAINTED
        return value if cast is None else cast(value, errors, column)

    if target is str:

        def get_str(attributes: Mapping[str, Any], errors: Errors) -> Any:
            value = attributes.get(name)
            return value if value.__class__ is str else slow(value, errors)

        return get_str
    if target is bool:

        def get_bool(attributes: Mapping[str, Any], errors: Errors) -> Any:
            value = attributes.get(name)
            return value if value.__class__ is bool else slow(value, errors)

        return get_bool
    if target is int:

        def get_int(attributes: Mapping[str, Any], errors: Errors) -> Any:
            value: Any = attributes.get(name)
            if value.__class__ is int and INT_MIN <= value <= INT_MAX:
                return value
            return slow(value, errors)

        return get_int

    def get_any(attributes: Mapping[str, Any], errors: Errors) -> Any:
        value: Any = attributes.get(name)
        kind = value.__class__
        if kind is str or kind is bool or (kind is int and INT_MIN <= value <= INT_MAX):
            return value
        return slow(value, errors)

    return get_any
