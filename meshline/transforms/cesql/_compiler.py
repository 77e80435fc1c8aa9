"""CESQL compiler: AST -> nested closures ``fn(attributes, errors) -> value``.

Every decision that depends only on the expression — operator overload, implicit
casts between statically known types, LIKE pattern shape, IN over literals,
function dispatch — is taken here, once; evaluation runs straight-line closures
with no tree walk and no type dispatch beyond a ``value.__class__ is str`` check.
Operands are read through getters (``_operands``), which also define how errors
propagate. Operators whose operands are all literals are folded into a literal
when they report no error.
"""

from __future__ import annotations

import difflib
import operator
from collections.abc import Callable, Mapping
from typing import Any

from meshline.transforms.cesql._errors import GENERIC, MATH, MISSING_FUNCTION, CesqlError
from meshline.transforms.cesql._functions import BUILTINS, arities, resolve
from meshline.transforms.cesql._like import like_test
from meshline.transforms.cesql._operands import (
    NO_CONST,
    Compiled,
    Errors,
    Fn,
    attribute_getter,
    constant,
    fold,
    getter,
    getter_can_err,
    precast,
)
from meshline.transforms.cesql._parser import (
    Attribute,
    Binary,
    Call,
    Exists,
    In,
    Like,
    Literal,
    Logical,
    Node,
    Unary,
    parse,
)
from meshline.transforms.cesql._values import (
    CASTS,
    INT_MAX,
    INT_MIN,
    TAINTED,
    TYPE_NAMES,
    ZERO,
    Value,
    describe,
)

__all__ = ["CesqlExpression", "compile_cesql", "function_problems"]

_REQUIRED_ATTRIBUTES = frozenset({"specversion", "id", "source", "type"})

# -- leaves ---------------------------------------------------------------------------------------


def _compile_literal(node: Literal) -> Compiled:
    return constant(node.value, node.column)


def _compile_attribute(node: Attribute) -> Compiled:
    return Compiled(attribute_getter(node.name, None, node.column), None, node.column, attr=node.name)


def _compile_exists(node: Exists) -> Compiled:
    if node.name in _REQUIRED_ATTRIBUTES:  # spec 3.4.4: always true, the event is assumed valid
        return constant(True, node.column)
    name = node.name

    def exists(attributes: Mapping[str, Any], errors: Errors) -> bool:
        return attributes.get(name) is not None

    return Compiled(exists, bool, node.column, can_err=False)


# -- unary ----------------------------------------------------------------------------------------


def _compile_unary(node: Unary) -> Compiled:
    operand = _compile(node.operand)
    if node.op == "NOT":
        get_bool = getter(operand, bool)

        def negation(attributes: Mapping[str, Any], errors: Errors) -> bool:
            return get_bool(attributes, errors) is False  # TAINTED -> false

        compiled = Compiled(negation, bool, node.column, can_err=getter_can_err(operand, bool))
        return fold(compiled, (operand,))
    get_int, column = getter(operand, int), node.column

    def minus(attributes: Mapping[str, Any], errors: Errors) -> int:
        value = get_int(attributes, errors)
        if value is TAINTED:
            return 0
        return _in_range(-value, errors, column)

    return fold(Compiled(minus, int, column), (operand,))


# -- binary ---------------------------------------------------------------------------------------


def _in_range(value: int, errors: Errors, column: int) -> int:
    if INT_MIN <= value <= INT_MAX:
        return value
    errors.append(CesqlError(MATH, f"integer overflow: {value} is outside the 32-bit range", column))
    return INT_MAX if value > INT_MAX else INT_MIN


def _truncated_division(x: int, y: int) -> int:
    quotient = abs(x) // abs(y)
    return quotient if (x < 0) == (y < 0) else -quotient


def _divide(x: int, y: int, errors: Errors, column: int) -> int:
    if y == 0:
        errors.append(CesqlError(MATH, "division by zero", column))
        return 0
    return _in_range(_truncated_division(x, y), errors, column)


def _modulo(x: int, y: int, errors: Errors, column: int) -> int:
    if y == 0:
        errors.append(CesqlError(MATH, "modulo by zero", column))
        return 0
    return x - y * _truncated_division(x, y)  # the sign of the dividend


_ARITHMETIC: dict[str, Callable[[int, int, Errors, int], int]] = {
    "+": lambda x, y, errors, column: _in_range(x + y, errors, column),
    "-": lambda x, y, errors, column: _in_range(x - y, errors, column),
    "*": lambda x, y, errors, column: _in_range(x * y, errors, column),
    "/": _divide,
    "%": _modulo,
}
_ORDERING: dict[str, Callable[[int, int], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def _compile_binary(node: Binary) -> Compiled:
    left, right = _compile(node.left), _compile(node.right)
    if node.op in ("=", "!=", "<>"):
        compiled = _equality(left, right, negated=node.op != "=", column=node.column)
    elif node.op == "XOR":
        compiled = _xor(left, right, node.column)
    elif node.op in _ORDERING:
        compiled = _ordering(_ORDERING[node.op], left, right, node.column)
    else:
        compiled = _arithmetic(_ARITHMETIC[node.op], left, right, node.column)
    return fold(compiled, (left, right))


def _arithmetic(
    op: Callable[[int, int, Errors, int], int], left: Compiled, right: Compiled, column: int
) -> Compiled:
    get_x, get_y = getter(left, int), getter(right, int)

    def arithmetic(attributes: Mapping[str, Any], errors: Errors) -> int:
        x, y = get_x(attributes, errors), get_y(attributes, errors)
        if x is TAINTED or y is TAINTED:
            return 0
        return op(x, y, errors, column)

    return Compiled(arithmetic, int, column)


def _ordering(op: Callable[[int, int], bool], left: Compiled, right: Compiled, column: int) -> Compiled:
    get_x, get_y = getter(left, int), getter(right, int)

    def ordering(attributes: Mapping[str, Any], errors: Errors) -> bool:
        x, y = get_x(attributes, errors), get_y(attributes, errors)
        if x is TAINTED or y is TAINTED:
            return False
        return op(x, y)

    can_err = getter_can_err(left, int) or getter_can_err(right, int)
    return Compiled(ordering, bool, column, can_err=can_err)


def _xor(left: Compiled, right: Compiled, column: int) -> Compiled:
    get_x, get_y = getter(left, bool), getter(right, bool)

    def xor(attributes: Mapping[str, Any], errors: Errors) -> bool:
        x, y = get_x(attributes, errors), get_y(attributes, errors)
        if x is TAINTED or y is TAINTED:
            return False
        return x is not y

    can_err = getter_can_err(left, bool) or getter_can_err(right, bool)
    return Compiled(xor, bool, column, can_err=can_err)


def _equality(left: Compiled, right: Compiled, *, negated: bool, column: int) -> Compiled:
    """``=``, ``!=``, ``<>``: the right operand's type picks the overload, the left one is cast to it."""
    if right.type is None:
        return _dynamic_equality(left, right, negated=negated, column=column)
    target = right.type
    get_x = getter(left, target)
    can_err = getter_can_err(left, target) or getter_can_err(right, target)
    constant = precast(right, target)
    if constant is not NO_CONST:

        def equals_constant(attributes: Mapping[str, Any], errors: Errors) -> bool:
            x = get_x(attributes, errors)
            return x is not TAINTED and (x == constant) is not negated

        return Compiled(equals_constant, bool, column, can_err=can_err)
    get_y = getter(right, target)

    def equals(attributes: Mapping[str, Any], errors: Errors) -> bool:
        x, y = get_x(attributes, errors), get_y(attributes, errors)
        if x is TAINTED or y is TAINTED:
            return False
        return (x == y) is not negated

    return Compiled(equals, bool, column, can_err=can_err)


def _dynamic_equality(left: Compiled, right: Compiled, *, negated: bool, column: int) -> Compiled:
    get_x, get_y, left_column = getter(left, None), getter(right, None), left.column

    def equals(attributes: Mapping[str, Any], errors: Errors) -> bool:
        x, y = get_x(attributes, errors), get_y(attributes, errors)
        if x is TAINTED or y is TAINTED:
            return False
        if x.__class__ is not y.__class__:
            x = CASTS[y.__class__](x, errors, left_column)
        return (x == y) is not negated

    return Compiled(equals, bool, column)


# -- AND / OR -------------------------------------------------------------------------------------


def _compile_logical(node: Logical) -> Compiled:
    operands = tuple(_compile(o) for o in node.operands)
    getters = tuple(getter(o, bool) for o in operands)
    fn = _conjunction(getters) if node.op == "AND" else _disjunction(getters)
    can_err = any(getter_can_err(o, bool) for o in operands)
    return fold(Compiled(fn, bool, node.column, can_err=can_err), operands)


def _conjunction(getters: tuple[Fn, ...]) -> Fn:
    """Short-circuit AND: stops at the first operand that is not true (false, or TAINTED)."""
    if len(getters) == 2:
        first, second = getters

        def and2(attributes: Mapping[str, Any], errors: Errors) -> bool:
            return first(attributes, errors) is True and second(attributes, errors) is True

        return and2

    def and_n(attributes: Mapping[str, Any], errors: Errors) -> bool:
        return all(get(attributes, errors) is True for get in getters)

    return and_n


def _disjunction(getters: tuple[Fn, ...]) -> Fn:
    """Short-circuit OR: stops at the first true operand; after a TAINTED one the result is false."""
    if len(getters) == 2:
        first, second = getters

        def or2(attributes: Mapping[str, Any], errors: Errors) -> bool:
            x = first(attributes, errors)
            if x is True:
                return True
            return second(attributes, errors) is True and x is not TAINTED

        return or2

    def or_n(attributes: Mapping[str, Any], errors: Errors) -> bool:
        tainted = False
        for get in getters:
            x = get(attributes, errors)
            if x is True and not tainted:
                return True
            tainted = tainted or x is TAINTED
        return False

    return or_n


# -- LIKE -----------------------------------------------------------------------------------------


def _compile_like(node: Like) -> Compiled:
    operand = _compile(node.operand)
    get_str, negated = getter(operand, str), node.negated
    test, argument = like_test(node.pattern)

    def like(attributes: Mapping[str, Any], errors: Errors) -> bool:
        value = get_str(attributes, errors)
        if value is TAINTED:
            return False
        return test(value, argument) is not negated

    return fold(Compiled(like, bool, node.column, can_err=getter_can_err(operand, str)), (operand,))


# -- IN -------------------------------------------------------------------------------------------


def _compile_in(node: In) -> Compiled:
    """``x IN (…)``: ``=`` against each element, with ``x``'s type as the target type of the casts."""
    operand = _compile(node.operand)
    items = tuple(_compile(item) for item in node.items)
    get_x, negated = getter(operand, None), node.negated
    get_items = tuple(getter(item, None) for item in items)
    columns = tuple(item.column for item in items)

    def membership(x: Value, values: list[Any], errors: Errors) -> bool:
        if TAINTED in values:
            return False
        kind, cast, found = x.__class__, CASTS[x.__class__], False
        for value, column in zip(values, columns, strict=True):
            found = (x == (value if value.__class__ is kind else cast(value, errors, column))) or found
        return found is not negated

    def contains(attributes: Mapping[str, Any], errors: Errors) -> bool:
        x = get_x(attributes, errors)
        values = [get(attributes, errors) for get in get_items]
        return False if x is TAINTED else membership(x, values, errors)

    fn = _literal_set_contains(get_x, items, negated, membership) or contains
    return fold(Compiled(fn, bool, node.column), (operand, *items))


def _literal_set_contains(
    get_x: Fn, items: tuple[Compiled, ...], negated: bool, membership: Callable[..., bool]
) -> Fn | None:
    """For a set of literals: one frozenset per target type, built once (None for a type a cast fails for)."""
    if any(item.const is NO_CONST for item in items):
        return None
    sets: dict[type, frozenset[Value] | None] = {}
    for kind in (bool, int, str):
        cast = [precast(item, kind) for item in items]
        sets[kind] = None if NO_CONST in cast else frozenset(cast)  # type: ignore[arg-type]
    constants = [item.const for item in items]

    def contains_literal(attributes: Mapping[str, Any], errors: Errors) -> bool:
        x = get_x(attributes, errors)
        if x is TAINTED:
            return False
        members = sets[x.__class__]
        if members is None:
            return membership(x, constants, errors)
        return (x in members) is not negated

    return contains_literal


# -- function calls -------------------------------------------------------------------------------


def _compile_call(node: Call) -> Compiled:
    args = tuple(_compile(arg) for arg in node.args)
    function = resolve(node.name, len(args))
    if function is None:
        return _missing_function(node, args)
    getters = tuple(getter(arg, t) for arg, t in zip(args, function.param_types(len(args)), strict=True))
    impl, zero, column = function.impl, ZERO[function.returns], node.column
    if len(getters) == 1:
        (get,) = getters

        def call1(attributes: Mapping[str, Any], errors: Errors) -> Any:
            value = get(attributes, errors)
            return zero if value is TAINTED else impl(errors, column, value)

        fn: Fn = call1
    else:

        def call(attributes: Mapping[str, Any], errors: Errors) -> Any:
            values = [get(attributes, errors) for get in getters]
            return zero if TAINTED in values else impl(errors, column, *values)

        fn = call
    return fold(Compiled(fn, function.returns, column), args)


def _missing_function(node: Call, args: tuple[Compiled, ...]) -> Compiled:
    """Spec 3.5: a call that cannot be dispatched is false, with a missingFunction error."""
    if node.name in BUILTINS:
        message = f"{node.name} takes {arities(node.name)} argument(s), not {len(args)}"
    else:
        message = f"unknown function {node.name}"
    getters, column = tuple(getter(arg, None) for arg in args), node.column

    def missing(attributes: Mapping[str, Any], errors: Errors) -> bool:
        errors.append(CesqlError(MISSING_FUNCTION, message, column))
        for get in getters:  # still evaluated, for their own errors
            get(attributes, errors)
        return False

    return Compiled(missing, bool, column)


# -- entry point ----------------------------------------------------------------------------------

_COMPILERS: dict[type, Callable[[Any], Compiled]] = {
    Literal: _compile_literal,
    Attribute: _compile_attribute,
    Exists: _compile_exists,
    Unary: _compile_unary,
    Binary: _compile_binary,
    Logical: _compile_logical,
    Like: _compile_like,
    In: _compile_in,
    Call: _compile_call,
}


def _compile(node: Node) -> Compiled:
    return _COMPILERS[type(node)](node)


class CesqlExpression:
    """A compiled CESQL expression; cheap to evaluate, safe to share between threads, picklable."""

    __slots__ = ("_fn", "_type", "expression")

    def __init__(self, expression: str, fn: Fn, result_type: type | None):
        self.expression = expression
        self._fn = fn
        self._type = result_type

    @property
    def result_type(self) -> str | None:
        """The static type of the result ("Boolean", "Integer", "String"), None for a bare attribute."""
        return TYPE_NAMES.get(self._type) if self._type is not None else None

    def evaluate(self, attributes: Mapping[str, Any]) -> tuple[Value, Errors]:
        """The value for an event's attributes, and the errors met in order (the first is the one to report).

        ``attributes`` are the context attributes and extensions in CloudEvents JSON
        form (``str``, ``int`` or ``bool`` values). Never raises.
        """
        errors: Errors = []
        value = self._fn(attributes, errors)
        return (False if value is TAINTED else value), errors

    def matches(self, attributes: Mapping[str, Any]) -> tuple[bool, Errors]:
        """As a filter (spec 1.2): true only for a Boolean true with no error.

        A result that is not a Boolean does not pass; that is reported as a
        ``generic`` error so a filter that can never match is visible.
        """
        errors: Errors = []
        value = self._fn(attributes, errors)
        if value is True and not errors:
            return True, errors
        if not errors and value.__class__ is not bool:
            errors.append(CesqlError(GENERIC, f"a filter must evaluate to a Boolean, not {describe(value)}"))
        return False, errors

    def __reduce__(self) -> tuple[object, ...]:
        return (compile_cesql, (self.expression,))

    def __repr__(self) -> str:
        return f"compile_cesql({self.expression!r})"


def compile_cesql(expression: str) -> CesqlExpression:
    """Parse and compile a CESQL v1 expression; raise :class:`CesqlParseError` if it is not valid."""
    compiled = _compile(parse(expression))
    return CesqlExpression(expression, compiled.fn, compiled.type)


def function_problems(expression: str) -> list[CesqlError]:
    """The calls of ``expression`` that no built-in function takes, in the order they appear.

    Such a call compiles (spec 3.5: its evaluation is false with a ``missingFunction``
    error), so an expression that holds one never matches as a filter; ``meshline
    validate`` reports them from this function table instead. Raises
    :class:`CesqlParseError` like :func:`compile_cesql` when the text is not valid CESQL.
    """
    problems: list[CesqlError] = []
    stack: list[Node] = [parse(expression)]
    calls: list[Call] = []
    while stack:
        node = stack.pop()
        if isinstance(node, Call):
            calls.append(node)
        stack.extend(_children(node))
    known = sorted(BUILTINS)
    for call in sorted(calls, key=lambda c: c.column):
        if resolve(call.name, len(call.args)) is not None:
            continue
        if call.name in BUILTINS:
            message = f"{call.name} takes {arities(call.name)} argument(s), not {len(call.args)}"
        else:
            close = difflib.get_close_matches(call.name, known, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]}?" if close else ""
            message = f"unknown function {call.name}{hint} (functions: {', '.join(known)})"
        problems.append(CesqlError(MISSING_FUNCTION, message, call.column))
    return problems


def _children(node: Node) -> tuple[Node, ...]:
    if isinstance(node, Unary | Like):
        return (node.operand,)
    if isinstance(node, Binary):
        return (node.left, node.right)
    if isinstance(node, Logical):
        return node.operands
    if isinstance(node, In):
        return (node.operand, *node.items)
    if isinstance(node, Call):
        return node.args
    return ()
