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

from meshline.transforms.jqc import arith, builtin
from meshline.transforms.jqc.compiler import _BINOPS, _SIMPLE0, _SIMPLE1, _TYPE_SELECTS, Compiler
from meshline.transforms.jqc.compiler import field_chain as _chain
from meshline.transforms.jqc.numbers import MF, M, cnum
from meshline.transforms.jqc.paths import each, each_opt, index, set_chain

__all__ = ["REJECTED", "Generated", "Unfit", "chain", "generate", "generate_program"]

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
_SCALAR_KEYS = (str, int, float)


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
        # what the writer does not write inline it hands to the closure compiler, one node at a
        # time: the node's Code becomes a constant the function calls (its flags are kept here)
        self.closures = Compiler()
        # (name, keys) → (temp, indent): `name.keys` was read into temp, in the block at indent
        self.memo: dict[tuple[str, tuple[Any, ...]], tuple[str, int]] = {}
        self.inline = 0  # nodes written inline (a function that only calls closures gains nothing)

    def mark(
        self,
    ) -> tuple[int, dict[str, tuple[Any, ...]], dict[tuple[str, tuple[Any, ...]], tuple[str, int]]]:
        return len(self.lines), dict(self.fresh), dict(self.memo)

    def rollback(
        self, mark: tuple[int, dict[str, tuple[Any, ...]], dict[tuple[str, tuple[Any, ...]], tuple[str, int]]]
    ) -> None:
        """Forget the lines of a node that turned out not to fit (they must never run)."""
        del self.lines[mark[0] :]
        self.fresh = mark[1]
        self.memo = mark[2]

    def forget(self, v: str) -> None:
        """``v`` was changed in place: what was read from it is not known any more."""
        self.memo = {key: known for key, known in self.memo.items() if key[0] != v}

    def closure(self, node: Node) -> tuple[str, bool]:
        """``node`` compiled by the closure compiler: (the constant naming its function, single)."""
        try:
            code = self.closures.compile(node, ())
        except Exception as e:  # Unsupported (a variable bound outside it), or anything else
            raise _Unsupported("closure") from e
        name = f"C{len(self.consts)}"
        self.consts[name] = code.fn
        return name, code.single

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
        if self.memo and any(k[1] > indent for k in self.memo.values()):
            # out of a block (into the code after it, or into a sibling `else`): what was read
            # in it may not have run
            self.memo = {key: known for key, known in self.memo.items() if known[1] <= indent}
        self.lines.append("    " * indent + line)

    # -- expressions: each returns the name holding its value

    def expr(self, node: Node, v: str, ind: int, owned: bool = False) -> str:
        """The name holding ``node``'s one output: written inline, or a call of its closure.

        ``owned``: nothing but ``node`` reads ``v`` (the input of the right side of a pipe).
        Raises :class:`_Unsupported` for a node with any number of outputs but one.
        """
        mark = self.mark()
        try:
            out = self.inline_expr(node, v, ind, owned)
        except _Unsupported:
            self.rollback(mark)
        except RecursionError:
            self.rollback(mark)
            raise
        else:
            self.inline += 1
            return out
        name, single = self.closure(node)
        if not single:
            raise _Unsupported("several outputs")
        t = self.temp()
        self.emit(ind, f"{t} = {name}({v}, e)")
        return t

    def inline_expr(self, node: Node, v: str, ind: int, owned: bool = False) -> str:
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
                return self.index(node, v, ind)
            # `.data.a` then `.data.b`: `.data` is read once (the input of a function is never
            # changed, except objects it built itself, whose reads are forgotten then)
            src = v
            for n in range(len(keys), 0, -1):
                known = self.memo.get((v, keys[:n]))
                if known is not None and known[1] <= ind:  # read in this block or one around it
                    src = known[0]
                    break
            else:
                n = 0
            for i in range(n, len(keys)):
                t = self.temp()
                kn = self.const(keys[i])
                self.emit(ind, f"{t} = {src}.get({kn}) if type({src}) is dict else _index({src}, {kn})")
                self.memo[(v, keys[: i + 1])] = (t, ind)
                src = t
            return src
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
            path = _chain(node[2]) if node[1] == "|=" else None
            if path:
                return self.on_dicts(node, path, v, ind, node[3])
            return self.assign(node, v, ind, owned)
        if tag == "call" and node[1] == "del" and len(node[2]) == 1 and (path := _chain(node[2][0])):
            return self.on_dicts(node, path, v, ind, None)
        if tag == "object":
            return self.obj(node, v, ind)
        if tag == "array":
            return self.collect(node, v, ind)
        if tag in ("tostring", "neg"):
            x = self.expr(node[1], v, ind)
            t = self.temp()
            self.emit(ind, f"{t} = {'_tostring' if tag == 'tostring' else '_neg'}({x})")
            return t
        if tag in ("and", "or"):
            return self.logic(node, v, ind)
        if tag == "alt":
            return self.alt(node, v, ind)
        if tag == "if":
            return self.cond(node, v, ind)
        if tag == "call":
            return self.call(node, v, ind)
        raise _Unsupported(tag)

    def on_dicts(self, node: Node, keys: tuple[str, ...], v: str, ind: int, rhs: Node | None) -> str:
        """``.a.b |= f`` (``rhs`` f) or ``del(.a.b)`` (``rhs`` None) where ``.`` and ``.a`` are objects.

        Then neither path nor getpath can fail, and both copy the objects on the path and
        set (or remove) the last key, as written here; on anything else the node's closure
        runs (``_modify``, ``delpaths``), so errors and nulls stay the closures'.
        """
        fallback, single = self.closure(node)
        if not single:
            raise _Unsupported("several outputs")
        parents = [v]
        tests = [f"type({v}) is dict"]
        for k in keys[:-1]:
            t = self.temp()
            tests.append(f"type({t} := {parents[-1]}.get({self.const(k)})) is dict")
            parents.append(t)
        out = self.temp()
        last = self.const(keys[-1])
        self.emit(ind, f"if {' and '.join(tests)}:")
        copy = self.temp()
        if rhs is None:
            self.emit(ind + 1, f"{copy} = dict({parents[-1]})")
            self.emit(ind + 1, f"{copy}.pop({last}, None)")
        else:
            old = self.temp()
            self.emit(ind + 1, f"{old} = {parents[-1]}.get({last})")
            new = self.expr(rhs, old, ind + 1)
            self.emit(ind + 1, f"{copy} = dict({parents[-1]})")
            self.emit(ind + 1, f"{copy}[{last}] = {new}")
        for depth in range(len(keys) - 2, -1, -1):
            up = self.temp()
            self.emit(ind + 1, f"{up} = dict({parents[depth]})")
            self.emit(ind + 1, f"{up}[{self.const(keys[depth])}] = {copy}")
            copy = up
        self.emit(ind + 1, f"{out} = {copy}")
        self.emit(ind, "else:")
        self.emit(ind + 1, f"{out} = {fallback}({v}, e)")
        return out

    def index(self, node: Node, v: str, ind: int) -> str:
        """``T[K]`` with a constant key (a string, a number or null): the closures' ``_index``."""
        _, term, key, opt = node
        if opt or key[0] != "literal" or (key[1] is not None and type(key[1]) not in _SCALAR_KEYS):
            raise _Unsupported("index")
        x = self.expr(term, v, ind)
        t = self.temp()
        self.emit(ind, f"{t} = _index({x}, {self.const(key[1])})")
        return t

    def obj(self, node: Node, v: str, ind: int) -> str:
        """``{k: f, …}`` with constant string keys and one output per value: pairs in order."""
        pairs = node[1]
        if not all(k[0] == "literal" and type(k[1]) is str for k, _ in pairs):
            raise _Unsupported("object keys")
        values = [self.expr(val, v, ind) for _, val in pairs]
        t = self.temp()
        items = ", ".join(f"{self.const(k[1])}: {x}" for (k, _), x in zip(pairs, values))
        self.emit(ind, f"{t} = {{{items}}}")
        return t

    def collect(self, node: Node, v: str, ind: int) -> str:
        """``[f]``: every output of ``f``, in order."""
        t = self.temp()
        self.emit(ind, f"{t} = []")
        if node[1] is not None:
            self.stream(node[1], v, ind, lambda i, x: self.emit(i, f"{t}.append({x})"))
        return t

    def logic(self, node: Node, v: str, ind: int) -> str:
        """``a and b``, ``a or b`` of one output each: ``b`` only when ``a`` does not decide."""
        is_or = node[0] == "or"
        a = self.expr(node[1], v, ind)
        t = self.temp()
        self.emit(ind, f"if ({a} is not None and {a} is not False) is {not is_or}:")
        b = self.expr(node[2], v, ind + 1)
        self.emit(ind + 1, f"{t} = {b} is not None and {b} is not False")
        self.emit(ind, "else:")
        self.emit(ind + 1, f"{t} = {is_or}")
        return t

    def alt(self, node: Node, v: str, ind: int) -> str:
        a = self.expr(node[1], v, ind)
        t = self.temp()
        self.emit(ind, f"if {a} is not None and {a} is not False:")
        self.emit(ind + 1, f"{t} = {a}")
        self.emit(ind, "else:")
        b = self.expr(node[2], v, ind + 1)
        self.emit(ind + 1, f"{t} = {b}")
        return t

    def cond(self, node: Node, v: str, ind: int) -> str:
        _, c, then, other = node
        x = self.expr(c, v, ind)
        t = self.temp()
        self.emit(ind, f"if {x} is not None and {x} is not False:")
        self.emit(ind + 1, f"{t} = {self.expr(then, v, ind + 1)}")
        self.emit(ind, "else:")
        self.emit(ind + 1, f"{t} = {self.expr(other, v, ind + 1) if other is not None else v}")
        return t

    def call(self, node: Node, v: str, ind: int) -> str:
        """The builtins of one output that take the input (and maybe one argument): the closures' own."""
        _, name, args = node
        t = self.temp()
        if not args and name in _SIMPLE0:
            self.emit(ind, f"{t} = {self.const(_SIMPLE0[name])}({v})")
            return t
        if len(args) == 1 and name in _SIMPLE1 and name != "nth":
            a = self.expr(args[0], v, ind)
            self.emit(ind, f"{t} = {self.const(_SIMPLE1[name])}({v}, {a})")
            return t
        raise _Unsupported(name)

    # -- streams: nodes with any number of outputs, each handed to ``sink(indent, name)``

    def stream(self, node: Node, v: str, ind: int, sink: Callable[[int, str], None]) -> None:
        mark = self.mark()
        try:
            self.inline_stream(node, v, ind, sink)
        except _Unsupported:
            self.rollback(mark)
        else:
            return
        name, single = self.closure(node)
        x = self.temp()
        if single:
            self.emit(ind, f"{x} = {name}({v}, e)")
            sink(ind, x)
            return
        self.emit(ind, f"for {x} in {name}({v}, e):")
        sink(ind + 1, x)

    def inline_stream(self, node: Node, v: str, ind: int, sink: Callable[[int, str], None]) -> None:
        tag = node[0]
        if tag == "paren":
            return self.inline_stream(node[1], v, ind, sink)
        if tag == "pipe":
            return self.stream(node[1], v, ind, lambda i, x: self.stream(node[2], x, i, sink))
        if tag == "comma":
            self.stream(node[1], v, ind, sink)
            self.stream(node[2], v, ind, sink)
            return None
        if tag == "index" and _chain(node) is None:
            _, term, key, opt = node
            if not opt and key[0] == "literal" and (key[1] is None or type(key[1]) in _SCALAR_KEYS):
                k = self.const(key[1])  # a constant key of a term with several outputs: `.a[].b`

                def each_key(i: int, x: str) -> None:
                    t = self.temp()
                    if type(key[1]) is str:
                        self.emit(i, f"{t} = {x}.get({k}) if type({x}) is dict else _index({x}, {k})")
                    else:
                        self.emit(i, f"{t} = _index({x}, {k})")
                    sink(i, t)

                return self.stream(term, v, ind, each_key)
        if tag == "each":
            src = self.expr(node[1], v, ind)
            x = self.temp()
            # No deadline tick: an inline loop walks the input's own arrays and objects (nothing
            # inline repeats or recurses), so its work is linear in the input's size. Closures
            # called inside it tick their own loops.
            each_fn = "each_opt" if node[2] else "each"
            self.emit(ind, f"for {x} in ({src} if type({src}) is list else {each_fn}({src})):")
            sink(ind + 1, x)
            return None
        if tag == "if":
            _, c, then, other = node
            x = self.expr(c, v, ind)
            self.emit(ind, f"if {x} is not None and {x} is not False:")
            self.stream(then, v, ind + 1, sink)
            self.emit(ind, "else:")
            if other is None:
                sink(ind + 1, v)
            else:
                self.stream(other, v, ind + 1, sink)
            return None
        if tag == "call":
            _, name, args = node
            if name == "select" and len(args) == 1:
                x = self.expr(args[0], v, ind)
                self.emit(ind, f"if {x} is not None and {x} is not False:")
                sink(ind + 1, v)
                return None
            if name == "empty" and not args:
                return None
            if name in _TYPE_SELECTS and not args:
                self.emit(ind, f"if {self.const(_TYPE_SELECTS[name])}({v}):")
                sink(ind + 1, v)
                return None
        sink(ind, self.inline_expr(node, v, ind))
        self.inline += 1
        return None

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
        elif op == "+" and (_stringy(left) or _stringy(right)):
            # string interpolation: "\\(.a) and \\(.b)" is literals + tostring, added
            self.emit(ind, f"{t} = {a} + {b} if type({a}) is str and type({b}) is str else {fn}({a}, {b})")
        elif op in _ARITHMETIC:
            # two ints within 2**53 whose result is too (and, for *, not 0: jq's -0): exact
            self.emit(ind, f"if type({a}) is int and type({b}) is int and -M <= {a} <= M and -M <= {b} <= M:")
            self.emit(ind + 1, f"{t} = {a} {op} {b}")
            zero = f"{t} == 0 or " if op == "*" else ""
            self.emit(ind + 1, f"if {zero}not -M <= {t} <= M:")
            self.emit(ind + 2, f"{t} = {fn}({a}, {b})")
            # a double and a double or an int within 2**53 (which Python converts exactly):
            # the operator inline, and cnum only for what it changes (integers, -0, inf, nan)
            self.emit(
                ind,
                f"elif (type({a}) is float and (type({b}) is float or (type({b}) is int and -M <= {b} <= M)))"
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
            self.forget(v)
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


def _stringy(node: Node) -> bool:
    """A string constant or ``tostring`` of something: a ``+`` with it is most likely a concatenation."""
    while node[0] == "paren":
        node = node[1]
    return node[0] == "tostring" or (node[0] == "literal" and type(node[1]) is str)


def _fast_number(c: Any) -> bool:
    return type(c) is float or (type(c) is int and -M <= c <= M)


class Generated:
    """A whole program as one function: ``fn(value, env)`` → its output (``single``) or a list."""

    __slots__ = ("fn", "loops", "may_slice", "single")

    def __init__(self, fn: Callable[[Any, Any], Any], single: bool, loops: bool, may_slice: bool):
        self.fn = fn
        self.single = single
        self.loops = loops  # it loops (its own loops or its closures'): run it under a deadline
        self.may_slice = may_slice  # see compare.array_slice


def generate_program(ast: Node) -> Generated | None:
    """``ast`` as one function, nodes inline where it can and closures elsewhere.

    ``None`` when nothing of it would be inline (the closures alone are as fast).
    """
    w = _Writer()
    try:
        result = w.inline_expr(ast, "v", 1)
        w.inline += 1
        single = True
    except _Unsupported:
        w = _Writer()
        single = False
        try:  # a generator: outputs one at a time, as the closures give them (`first` stops early)
            w.inline_stream(ast, "v", 1, lambda i, x: w.emit(i, f"yield {x}"))
            w.inline += 1
        except (_Unsupported, RecursionError):
            return None
        w.emit(1, "return")
        result = None
    except RecursionError:
        return None
    if not w.inline:
        return None
    w.emit(1, "yield" if result is None else f"return {result}")  # (unreachable in a generator)
    fn = _define(w, "jq(v, e)")
    return Generated(fn, single, w.closures.loops, w.closures.may_slice)


def generate(ast: Node) -> Callable[[Any, Any], Any] | None:
    """``fn(value, env)`` → the single output of ``ast``; ``None`` unless it has exactly one."""
    g = generate_program(ast)
    return g.fn if g is not None and g.single else None


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
    w.emit(1, "e = ()")
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
        "each": each,
        "each_opt": each_opt,
        "_tostring": builtin.tostring,
        "_neg": arith.neg,
        **{name: _BINOPS[op] for op, name in _OP_NAMES.items()},
        **w.consts,
    }
    exec(compile(source, "<jq program>", "exec"), namespace)
    fn = namespace[signature.partition("(")[0]]
    fn.__doc__ = source  # for debugging: the generated code
    return fn
