"""Straight-line Python for the smallest jq programs: paths, literals, operators, ``=`` on paths.

The closure compiler (:mod:`meshline.transforms.jqc.compiler`) runs a program as a
tree of closures: ``.data.amount > 100`` is five Python calls per event, and
``.data.total = (.data.amount * .data.quantity) | .data.status = "big"`` about
fifteen. Most event programs are only paths, literals, arithmetic, comparisons
and assignments to paths, piped. For those this module writes one Python
function with the same semantics and ``exec``\\ s it: field access is inline, a
comparison with a number constant is inline for numbers, every other operator
calls the same runtime function as the closures, and an assignment copies each
object on its path inline (``set_chain`` when the path meets something else).

:func:`generate` returns ``None`` for anything outside that subset; the program
then keeps its closures. The differential tests run both on the same programs
and inputs (``tests/unit/test_jq.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from meshline.transforms.jqc.compiler import _BINOPS
from meshline.transforms.jqc.compiler import field_chain as _chain
from meshline.transforms.jqc.numbers import MF, M, cnum
from meshline.transforms.jqc.paths import index, set_chain

__all__ = ["REJECTED", "Unfit", "chain", "generate"]

Node = tuple[Any, ...]

_OP_NAMES = {
    "+": "add",
    "-": "sub",
    "*": "mul",
    "/": "div",
    "%": "mod",
    "==": "op_eq",
    "!=": "op_ne",
    "<": "op_lt",
    "<=": "op_le",
    ">": "op_gt",
    ">=": "op_ge",
}
_COMPARISONS = {"<": "<", "<=": "<=", ">": ">", ">=": ">="}
_ARITHMETIC = ("+", "-", "*")
_SCALARS = (str, int, float, bool, type(None))
_MAX_LINES = 400


class _Unsupported(Exception):
    pass


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.consts: dict[str, Any] = {}
        self._n = 0
        # temp → keys: the value of an assignment. Its top object and the objects along the
        # keys were built by this function and nothing else holds them (see assign).
        self.fresh: dict[str, tuple[Any, ...]] = {}

    def temp(self) -> str:
        self._n += 1
        return f"t{self._n}"

    def const(self, value: Any) -> str:
        for name, v in self.consts.items():
            if type(v) is type(value) and v == value:
                return name
        name = f"K{len(self.consts)}"
        self.consts[name] = value
        return name

    def emit(self, indent: int, line: str) -> None:
        if len(self.lines) > _MAX_LINES:
            raise _Unsupported("too long")
        self.lines.append("    " * indent + line)

    # -- expressions: each returns the name holding its value

    def expr(self, node: Node, v: str, ind: int, owned: bool = False) -> str:
        """``owned``: nothing but ``node`` reads ``v`` (the input of the right side of a pipe)."""
        tag = node[0]
        if tag == "identity":
            return v
        if tag == "paren":
            return self.expr(node[1], v, ind, owned)
        if tag == "literal":
            if type(node[1]) not in _SCALARS:
                raise _Unsupported("literal")
            return self.const(node[1])
        if tag == "index":
            keys = _chain(node)
            if keys is None:
                raise _Unsupported("index")
            t = self.temp()
            src = v
            for k in keys:
                kn = self.const(k)
                self.emit(ind, f"{t} = {src}.get({kn}) if type({src}) is dict else _index({src}, {kn})")
                src = t
            return t
        if tag == "binop":
            return self.binop(node, v, ind)
        if tag == "pipe":
            left = self.expr(node[1], v, ind, owned)
            if left != v and not left.startswith("t"):  # a constant: bind it to a temp
                t = self.temp()
                self.emit(ind, f"{t} = {left}")
                left = t
            return self.expr(node[2], left, ind, owned or left != v)
        if tag == "assign":
            return self.assign(node, v, ind, owned)
        raise _Unsupported(tag)

    def binop(self, node: Node, v: str, ind: int) -> str:
        _, op, left, right = node
        if op not in _OP_NAMES:
            raise _Unsupported(op)
        b = self.expr(right, v, ind)  # the closures evaluate the right operand first
        a = self.expr(left, v, ind)
        t = self.temp()
        fn = _OP_NAMES[op]
        if op in _COMPARISONS and right[0] == "literal" and _fast_number(right[1]):
            # a number constant: Python compares a float, or an int within 2**53, as jq does
            py = _COMPARISONS[op]
            self.emit(
                ind,
                f"{t} = ({a} {py} {b}) if type({a}) is float or (type({a}) is int and -M <= {a} <= M)"
                f" else {fn}({a}, {b})",
            )
        elif op in _ARITHMETIC:
            # a double and a double or an int within 2**53 (which Python converts exactly):
            # the operator inline, and cnum only for what it changes (integers, -0, inf, nan)
            self.emit(
                ind,
                f"if (type({a}) is float and (type({b}) is float or (type({b}) is int and -M <= {b} <= M)))"
                f" or (type({b}) is float and type({a}) is int and -M <= {a} <= M):",
            )
            self.emit(ind + 1, f"{t} = {a} {op} {b}")
            self.emit(ind + 1, f"if {t}.is_integer() or not -MF <= {t} <= MF:")
            self.emit(ind + 2, f"{t} = cnum({t})")
            self.emit(ind, "else:")
            self.emit(ind + 1, f"{t} = {fn}({a}, {b})")
        else:
            self.emit(ind, f"{t} = {fn}({a}, {b})")
        return t

    def assign(self, node: Node, v: str, ind: int, owned: bool = False) -> str:
        _, op, lhs, rhs = node
        keys = _chain(lhs)
        if op != "=" or not keys:
            raise _Unsupported("assignment")
        val = self.expr(rhs, v, ind)
        built = self.fresh.get(v) if owned else None
        if built is not None and tuple(keys[:-1]) == built[: len(keys) - 1] and _unshared(rhs):
            # The input is an earlier assignment's value that only this one reads, and every
            # object on the path was built by this function: set the key in place (a copy
            # would be the same). The value is a constant or a boolean: it cannot be one of
            # those objects.
            container = v
            for k in keys[:-1]:
                t = self.temp()
                self.emit(ind, f"{t} = {container}[{self.const(k)}]")
                container = t
            self.emit(ind, f"{container}[{self.const(keys[-1])}] = {val}")
            self.fresh[v] = tuple(keys[:-1])  # what lay under the key set is not known any more
            return v
        out = self.temp()
        kc = self.const(keys)
        # copy every object on the path (as set_chain does); anything else: set_chain itself
        names = [v] + [self.temp() for _ in keys[:-1]]
        for depth, k in enumerate(keys[:-1]):
            parent, child = names[depth], names[depth + 1]
            self.emit(ind + depth, f"if type({parent}) is dict:")
            self.emit(ind + depth + 1, f"{child} = {parent}.get({self.const(k)})")
        last = len(keys) - 1
        self.emit(ind + last, f"if type({names[last]}) is dict:")
        copies = [self.temp() for _ in keys]
        self.emit(ind + last + 1, f"{copies[last]} = dict({names[last]})")
        self.emit(ind + last + 1, f"{copies[last]}[{self.const(keys[last])}] = {val}")
        for depth in range(last - 1, -1, -1):
            self.emit(ind + last + 1, f"{copies[depth]} = dict({names[depth]})")
            self.emit(ind + last + 1, f"{copies[depth]}[{self.const(keys[depth])}] = {copies[depth + 1]}")
        self.emit(ind + last + 1, f"{out} = {copies[0]}")
        for depth in range(last, -1, -1):
            self.emit(ind + depth, "else:")
            self.emit(ind + depth + 1, f"{out} = set_chain({v}, {kc}, 0, {val})")
        self.fresh[out] = tuple(keys[:-1])  # copies on both branches (set_chain copies too)
        return out


def _unshared(node: Node) -> bool:
    """A value that is never an object the program reads or builds: a constant, a comparison."""
    while node[0] == "paren":
        node = node[1]
    return node[0] == "literal" or (node[0] == "binop" and node[1] in ("==", "!=", "<", "<=", ">", ">="))


def _fast_number(c: Any) -> bool:
    return type(c) is float or (type(c) is int and -M <= c <= M)


def generate(ast: Node) -> Callable[[Any, Any], Any] | None:
    """``fn(value, env)`` → the single output of ``ast``, or ``None`` outside the subset."""
    w = _Writer()
    try:
        result = w.expr(ast, "v", 1)
    except (_Unsupported, RecursionError):
        return None
    w.emit(1, f"return {result}")
    return _define(w, "jq(v, e)")


class Unfit(Exception):
    """Raised by a :func:`chain` function for an event it was not written for."""


REJECTED = object()  # what a chain function returns when one of its filters does not hold


def chain(filters: list[Node], steps: list[Node]) -> Callable[[Any], Any] | None:
    """One function for a trigger's jq filters followed by its jq steps, all in the subset.

    ``fn(form)`` takes an event's JSON form. It returns :data:`REJECTED` when a filter's
    output is not ``true``, else the last step's output (the form itself without steps).
    Between two steps, an output that is not the JSON form of an event with JSON data
    raises :class:`Unfit`; any exception (``Unfit``, a jq error, a fallback to libjq)
    means the caller runs the filters and steps one by one instead, which gives the
    same outputs, counts and errors. The steps must assign under ``.data`` only (see
    :func:`meshline.transforms.jq.data_only_program`): their outputs keep the input's
    attributes. ``None`` when some program is outside the subset.
    """
    w = _Writer()
    try:
        for f in filters:
            ok = w.expr(f, "v", 1)
            w.emit(1, f"if {ok} is not True:")
            w.emit(2, "return REJECTED")
        form = "v"
        for n, s in enumerate(steps):
            if n:  # the input of the next step is the JSON form of an event (see jq_event)
                w.emit(
                    1,
                    f"if type({form}) is not dict or {form}.get('data') is None or 'data_base64' in {form}:",
                )
                w.emit(2, "raise Unfit")
            form = w.expr(s, form, 1, owned=True)  # a step's input is only that step's
            if form.startswith("K"):  # a constant: never a step of the subset's data-only programs
                raise _Unsupported("constant step")
    except (_Unsupported, RecursionError):
        return None
    w.emit(1, f"return {form}")
    return _define(w, "chain(v)")


def _define(w: _Writer, signature: str) -> Any:
    source = f"def {signature}:\n" + "\n".join(w.lines) + "\n"
    namespace: dict[str, Any] = {
        "_index": index,
        "set_chain": set_chain,
        "M": M,
        "MF": MF,
        "cnum": cnum,
        "REJECTED": REJECTED,
        "Unfit": Unfit,
        **{name: _BINOPS[op] for op, name in _OP_NAMES.items()},
        **w.consts,
    }
    exec(compile(source, "<jq program>", "exec"), namespace)
    fn = namespace[signature.partition("(")[0]]
    fn.__doc__ = source  # for debugging: the generated code
    return fn
