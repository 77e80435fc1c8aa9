"""Compile the parser's AST into Python closures.

Every node becomes a :class:`Code`: either *single* -- ``fn(value, env) -> value``, exactly one
output (or an exception) -- or *multi* -- ``fn(value, env) -> iterable`` of outputs, lazy
(generators) wherever laziness is observable (``first``, ``?``, ``any``, ``isempty``, ...).
Pipes, operators and constructors of single nodes fuse into plain function calls, so the
common filters and transformations never create generators.

``env`` is a tuple of ``$variable`` values; variables are resolved to tuple positions at
compile time. Evaluation order (which operand is the outer loop, which error is reported
first) follows libjq's bytecode: binary operators iterate their right operand in the outer
loop; object construction iterates pairs left to right, key before value.

Assignments compile their left-hand side in *path mode* (``fn(value, env, path) -> iterable of
(path, value)``); updates copy only the containers along each path, and containers copied by
the same update are mutated in place afterwards (``owned``), so ``.[] |= f`` stays linear.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from meshline.transforms.jqc import arith, builtin, clock, compare, numbers
from meshline.transforms.jqc import paths as jpaths  # ``paths`` is a local name here
from meshline.transforms.jqc.errors import JqError, Unsupported
from meshline.transforms.jqc.parser import Node

__all__ = ["Code", "compile_ast"]

Scope = tuple[str, ...]
PathFn = Callable[[Any, tuple[Any, ...], tuple[Any, ...]], Iterable[tuple[tuple[Any, ...], Any]]]

_truthy = numbers.truthy
_index = jpaths.index
_next_tick = clock.next_tick
_MASK = clock.MASK
_check = clock.check_deadline


class Code:
    """A compiled node: ``fn(v, env)`` returns the value (single) or an iterable (multi)."""

    __slots__ = ("const", "fn", "single")

    def __init__(self, single: bool, fn: Callable[..., Any], const: Any = None) -> None:
        self.single = single
        self.fn = fn
        self.const = const  # (value,) for literals

    def multi(self) -> Callable[[Any, tuple[Any, ...]], Iterable[Any]]:
        if not self.single:
            return self.fn
        f = self.fn

        def one(v: Any, e: tuple[Any, ...]) -> Iterable[Any]:
            return (f(v, e),)

        return one


def _single(fn: Callable[..., Any]) -> Code:
    return Code(True, fn)


def _multi(fn: Callable[..., Any]) -> Code:
    return Code(False, fn)


_BINOPS: dict[str, Callable[[Any, Any], Any]] = {
    "+": arith.add,
    "-": arith.sub,
    "*": arith.mul,
    "/": arith.div,
    "%": arith.mod,
    "==": compare.op_eq,
    "!=": compare.op_ne,
    "<": compare.op_lt,
    "<=": compare.op_le,
    ">": compare.op_gt,
    ">=": compare.op_ge,
}

_TYPE_SELECTS: dict[str, Callable[[Any], bool]] = {
    "values": lambda v: v is not None,
    "nulls": lambda v: v is None,
    "booleans": lambda v: v is True or v is False,
    "numbers": lambda v: type(v) is int or type(v) is float,
    "strings": lambda v: type(v) is str,
    "arrays": lambda v: type(v) is list,
    "objects": lambda v: type(v) is dict,
    "iterables": lambda v: type(v) is list or type(v) is dict,
    "scalars": lambda v: type(v) is not list and type(v) is not dict,
}

_SIMPLE0: dict[str, Callable[[Any], Any]] = {
    "length": builtin.length,
    "utf8bytelength": builtin.utf8bytelength,
    "keys": builtin.keys,
    "keys_unsorted": builtin.keys_unsorted,
    "type": numbers.kind,
    "not": lambda v: not _truthy(v),
    "tostring": builtin.tostring,
    "tojson": compare.dump,
    "fromjson": builtin.fromjson,
    "tonumber": builtin.tonumber,
    "toboolean": builtin.toboolean,
    "ascii_downcase": builtin.ascii_downcase,
    "ascii_upcase": builtin.ascii_upcase,
    "explode": builtin.explode,
    "implode": builtin.implode,
    "floor": lambda v: builtin.libm("floor", v),
    "ceil": lambda v: builtin.libm("ceil", v),
    "sqrt": lambda v: builtin.libm("sqrt", v),
    "fabs": lambda v: builtin.libm("fabs", v),
    "abs": lambda v: arith.neg(v) if compare.op_lt(v, 0) else v,
    "min": lambda v: builtin.minmax(v, v, True),
    "max": lambda v: builtin.minmax(v, v, False),
    "unique": builtin.unique,
    "sort": builtin.sort,
    "first": lambda v: _index(v, 0),
    "last": lambda v: _index(v, -1),
    "to_entries": builtin.to_entries,
    "from_entries": builtin.from_entries,
    "flatten": lambda v: builtin.flatten(v, -1),
    "trim": lambda v: builtin.trim(v, True, True),
    "ltrim": lambda v: builtin.trim(v, True, False),
    "rtrim": lambda v: builtin.trim(v, False, True),
}

# $param builtins and cfunctions of one argument: fn(input, arg), once per output of the arg
_SIMPLE1: dict[str, Callable[[Any, Any], Any]] = {
    "has": builtin.has,
    "contains": builtin.contains,
    "startswith": builtin.startswith,
    "endswith": builtin.endswith,
    "split": builtin.split1,
    "ltrimstr": builtin.ltrimstr,
    "rtrimstr": builtin.rtrimstr,
    "trimstr": lambda v, x: builtin.rtrimstr(builtin.ltrimstr(v, x), x),
    "join": builtin.join,
    "in": lambda v, x: builtin.has(x, v),
    "inside": lambda v, x: builtin.contains(x, v),
    "nth": _index,
}


def _add_all(values: Iterable[Any]) -> Any:
    acc = None
    for x in values:
        acc = arith.add(acc, x)
    return acc


def _reverse(v: Any) -> list[Any]:
    """``def reverse: [.[length - 1 - range(0;length)]];``"""
    if type(v) is list:
        return v[::-1]
    n = builtin.length(v)
    out = []
    i = 0
    dn = numbers.to_double(n)
    while i < dn:
        out.append(_index(v, arith.sub(arith.sub(n, 1), i)))
        i += 1
    return out


def _flatten1(v: Any, depth: Any) -> list[Any]:
    if compare.op_lt(depth, 0):
        raise JqError("flatten depth must not be negative")
    return builtin.flatten(v, depth)


_SIMPLE0["reverse"] = _reverse


def _add0(v: Any) -> Any:
    """``add``: an array of integers or of strings at C speed, anything else one ``+`` at a time."""
    if type(v) is list and v:
        kind = type(v[0])
        if kind is int and all(type(x) is int for x in v):
            n = len(v)
            if min(v) * n >= -numbers.M and max(v) * n <= numbers.M:  # no partial sum leaves 2**53
                return sum(v)
        elif kind is str and all(type(x) is str for x in v):
            return "".join(v)
    return _add_all(jpaths.each(v))


_SIMPLE0["add"] = _add0
_SIMPLE1["flatten"] = _flatten1


def _error0(v: Any) -> Any:
    raise builtin.error_value(v)


def _any0(v: Any) -> bool:
    return any(_truthy(x) for x in jpaths.each(v))


def _all0(v: Any) -> bool:
    return all(_truthy(x) for x in jpaths.each(v))


_SIMPLE0["error"] = _error0
_SIMPLE0["any"] = _any0
_SIMPLE0["all"] = _all0


class Compiler:
    def __init__(self) -> None:
        self.may_slice = False  # the program may slice arrays (see compare.array_slice)
        # the program has a loop (calls clock.tick): run it under a deadline
        self.loops = False

    def compile(self, node: Node, scope: Scope) -> Code:
        method = getattr(self, "c_" + node[0], None)
        if method is None:
            raise Unsupported(node[0])
        return method(node, scope)

    # ------------------------------------------------------------------ basics

    def c_identity(self, node: Node, scope: Scope) -> Code:
        return _single(lambda v, e: v)

    def c_recurse(self, node: Node, scope: Scope) -> Code:
        return _multi(lambda v, e: jpaths.recurse_values(v))

    def c_literal(self, node: Node, scope: Scope) -> Code:
        c = node[1]
        return Code(True, lambda v, e: c, (c,))

    def c_paren(self, node: Node, scope: Scope) -> Code:
        return self.compile(node[1], scope)

    def c_var(self, node: Node, scope: Scope) -> Code:
        name = node[1]
        if name not in scope:
            raise Unsupported(f"${name}")
        i = len(scope) - 1 - scope[::-1].index(name)
        return _single(lambda v, e: e[i])

    # ------------------------------------------------------------------ paths in value mode

    def _field_chain(self, node: Node) -> tuple[str, ...] | None:
        return field_chain(node)

    def c_index(self, node: Node, scope: Scope) -> Code:
        _, term, key, opt = node
        chain = None if opt else self._field_chain(node)
        if chain is not None:
            if len(chain) == 1:
                k0 = chain[0]

                def field(v: Any, e: Any) -> Any:
                    if type(v) is dict:
                        return v.get(k0)
                    return _index(v, k0)

                return _single(field)

            def fields(v: Any, e: Any) -> Any:
                for k in chain:
                    if type(v) is dict:
                        v = v.get(k)
                    elif v is not None:
                        v = _index(v, k)
                return v

            return _single(fields)
        t = self.compile(term, scope)
        k = self.compile(key, scope)
        if k.const is None or type(k.const[0]) is dict:
            self.may_slice = True
        if not opt and t.single and k.single:
            ft = t.fn
            if k.const is not None:
                kc = k.const[0]
                return _single(lambda v, e: _index(ft(v, e), kc))
            fk = k.fn

            def index1(v: Any, e: Any) -> Any:
                kv = fk(v, e)
                return _index(ft(v, e), kv)

            return _single(index1)
        mt = t.multi()
        mk = k.multi()

        self.loops = True

        def index_gen(v: Any, e: Any) -> Iterator[Any]:
            for kv in mk(v, e):
                for tv in mt(v, e):
                    if not _next_tick() & _MASK:
                        _check()
                    if opt:
                        try:
                            r = _index(tv, kv)
                        except JqError:
                            continue
                        yield r
                    else:
                        yield _index(tv, kv)

        return _multi(index_gen)

    def c_slice(self, node: Node, scope: Scope) -> Code:
        _, term, lo, hi, opt = node
        self.may_slice = True
        t = self.compile(term, scope).multi()
        mlo = self.compile(lo if lo is not None else ("literal", None), scope).multi()
        mhi = self.compile(hi if hi is not None else ("literal", None), scope).multi()

        self.loops = True

        def slice_gen(v: Any, e: Any) -> Iterator[Any]:
            for a in mlo(v, e):
                for b in mhi(v, e):
                    if not _next_tick() & _MASK:
                        _check()
                    key = {"start": a, "end": b}
                    for tv in t(v, e):
                        if opt:
                            try:
                                r = _index(tv, key)
                            except JqError:
                                continue
                            yield r
                        else:
                            yield _index(tv, key)

        return _multi(slice_gen)

    def c_each(self, node: Node, scope: Scope) -> Code:
        _, term, opt = node
        t = self.compile(term, scope)
        it = jpaths.each_opt if opt else jpaths.each
        if t.single:
            ft = t.fn
            return _multi(lambda v, e: it(ft(v, e)))
        mt = t.fn

        self.loops = True

        def each_gen(v: Any, e: Any) -> Iterator[Any]:
            for tv in mt(v, e):
                if not _next_tick() & _MASK:
                    _check()
                yield from it(tv)

        return _multi(each_gen)

    # ------------------------------------------------------------------ constructors / operators

    def c_neg(self, node: Node, scope: Scope) -> Code:
        t = self.compile(node[1], scope)
        return self._map1(t, arith.neg)

    def _map1(self, c: Code, fn: Callable[[Any], Any]) -> Code:
        if c.single:
            f = c.fn
            return _single(lambda v, e: fn(f(v, e)))
        m = c.fn

        def gen(v: Any, e: Any) -> Iterator[Any]:
            for x in m(v, e):
                yield fn(x)

        return _multi(gen)

    def c_tostring(self, node: Node, scope: Scope) -> Code:
        return self._map1(self.compile(node[1], scope), builtin.tostring)

    def c_array(self, node: Node, scope: Scope) -> Code:
        if node[1] is None:
            return _single(lambda v, e: [])
        q = self.compile(node[1], scope)
        f = q.fn
        if q.single:
            return _single(lambda v, e: [f(v, e)])
        return _single(lambda v, e: list(f(v, e)))

    def c_object(self, node: Node, scope: Scope) -> Code:
        pairs = node[1]
        keys = [self.compile(k, scope) for k, _ in pairs]
        vals = [self.compile(v, scope) for _, v in pairs]
        if all(k.const is not None and type(k.const[0]) is str for k in keys) and all(v.single for v in vals):
            items = tuple((k.const[0], v.fn) for k, v in zip(keys, vals))

            def obj(v: Any, e: Any) -> dict[str, Any]:
                d = {}
                for k, f in items:
                    d[k] = f(v, e)
                return d

            return _single(obj)
        mkeys = [k.multi() for k in keys]
        mvals = [v.multi() for v in vals]
        n = len(pairs)

        self.loops = True

        def build(v: Any, e: Any, i: int, acc: dict[str, Any]) -> Iterator[dict[str, Any]]:
            if not _next_tick() & _MASK:
                _check()
            if i == n:
                yield acc
                return
            for k in mkeys[i](v, e):
                for x in mvals[i](v, e):
                    if type(k) is not str:
                        raise JqError(f"Cannot use {numbers.kind(k)} ({compare.trunc(k)}) as object key")
                    d = dict(acc)
                    d[k] = x
                    yield from build(v, e, i + 1, d)

        return _multi(lambda v, e: build(v, e, 0, {}))

    def c_pipe(self, node: Node, scope: Scope) -> Code:
        a = self.compile(node[1], scope)
        b = self.compile(node[2], scope)
        fa = a.fn
        fb = b.fn
        if a.single:
            if b.single and b.const is not None:
                c = b.const[0]

                def pipe_const(v: Any, e: Any) -> Any:
                    fa(v, e)
                    return c

                return _single(pipe_const)
            return Code(b.single, lambda v, e: fb(fa(v, e), e))
        self.loops = True
        if b.single:

            def pipe_ms(v: Any, e: Any) -> Iterator[Any]:
                for x in fa(v, e):
                    if not _next_tick() & _MASK:
                        _check()
                    yield fb(x, e)

            return _multi(pipe_ms)

        def pipe_mm(v: Any, e: Any) -> Iterator[Any]:
            for x in fa(v, e):
                if not _next_tick() & _MASK:
                    _check()
                yield from fb(x, e)

        return _multi(pipe_mm)

    def c_comma(self, node: Node, scope: Scope) -> Code:
        ma = self.compile(node[1], scope).multi()
        mb = self.compile(node[2], scope).multi()

        def comma(v: Any, e: Any) -> Iterator[Any]:
            yield from ma(v, e)
            yield from mb(v, e)

        return _multi(comma)

    def c_binop(self, node: Node, scope: Scope) -> Code:
        _, op, left, right = node
        fn = _BINOPS[op]
        a = self.compile(left, scope)
        b = self.compile(right, scope)
        if a.single and b.single:
            fa = a.fn
            fb = b.fn
            if b.const is not None:
                bc = b.const[0]
                return _single(lambda v, e: fn(fa(v, e), bc))
            if a.const is not None:
                ac = a.const[0]
                return _single(lambda v, e: fn(ac, fb(v, e)))

            def binop(v: Any, e: Any) -> Any:
                y = fb(v, e)
                return fn(fa(v, e), y)

            return _single(binop)
        ma = a.multi()
        mb = b.multi()

        self.loops = True

        def binop_gen(v: Any, e: Any) -> Iterator[Any]:
            for y in mb(v, e):
                for x in ma(v, e):
                    if not _next_tick() & _MASK:
                        _check()
                    yield fn(x, y)

        return _multi(binop_gen)

    def c_and(self, node: Node, scope: Scope) -> Code:
        return self._logic(node, scope, False)

    def c_or(self, node: Node, scope: Scope) -> Code:
        return self._logic(node, scope, True)

    def _logic(self, node: Node, scope: Scope, is_or: bool) -> Code:
        a = self.compile(node[1], scope)
        b = self.compile(node[2], scope)
        if a.single and b.single:
            fa = a.fn
            fb = b.fn
            if is_or:
                return _single(lambda v, e: _truthy(fa(v, e)) or _truthy(fb(v, e)))
            return _single(lambda v, e: _truthy(fa(v, e)) and _truthy(fb(v, e)))
        ma = a.multi()
        mb = b.multi()

        self.loops = True

        def logic(v: Any, e: Any) -> Iterator[bool]:
            for x in ma(v, e):
                if not _next_tick() & _MASK:
                    _check()
                if _truthy(x) == is_or:
                    yield is_or
                else:
                    for y in mb(v, e):
                        yield _truthy(y)

        return _multi(logic)

    def c_alt(self, node: Node, scope: Scope) -> Code:
        a = self.compile(node[1], scope)
        b = self.compile(node[2], scope)
        if a.single and b.single:
            fa = a.fn
            fb = b.fn

            def alt1(v: Any, e: Any) -> Any:
                x = fa(v, e)
                return x if x is not None and x is not False else fb(v, e)

            return _single(alt1)
        ma = a.multi()
        mb = b.multi()

        def alt(v: Any, e: Any) -> Iterator[Any]:
            found = False
            for x in ma(v, e):
                if x is not None and x is not False:
                    found = True
                    yield x
            if not found:
                yield from mb(v, e)

        return _multi(alt)

    def c_if(self, node: Node, scope: Scope) -> Code:
        _, cond, then, other = node
        c = self.compile(cond, scope)
        t = self.compile(then, scope)
        o = self.compile(other if other is not None else ("identity",), scope)
        if c.single and t.single and o.single:
            fc = c.fn
            ft = t.fn
            fo = o.fn

            def if1(v: Any, e: Any) -> Any:
                x = fc(v, e)
                return ft(v, e) if x is not None and x is not False else fo(v, e)

            return _single(if1)
        mc = c.multi()
        mt = t.multi()
        mo = o.multi()

        self.loops = True

        def if_gen(v: Any, e: Any) -> Iterator[Any]:
            for x in mc(v, e):
                if not _next_tick() & _MASK:
                    _check()
                yield from (mt if x is not None and x is not False else mo)(v, e)

        return _multi(if_gen)

    def c_try(self, node: Node, scope: Scope) -> Code:
        b = self.compile(node[1], scope)
        fb = b.fn
        if b.single:

            def try1(v: Any, e: Any) -> Iterable[Any]:
                try:
                    return (fb(v, e),)
                except JqError:
                    return ()

            return _multi(try1)

        def try_gen(v: Any, e: Any) -> Iterator[Any]:
            try:
                for x in fb(v, e):
                    yield x
            except JqError:
                return

        return _multi(try_gen)

    # ------------------------------------------------------------------ variables / reductions

    def c_bind(self, node: Node, scope: Scope) -> Code:
        _, src, name, body = node
        s = self.compile(src, scope)
        b = self.compile(body, (*scope, name))
        fb = b.fn
        if s.single:
            fs = s.fn
            return Code(b.single, lambda v, e: fb(v, (*e, fs(v, e))))
        ms = s.fn
        mb = b.multi()

        self.loops = True

        def bind(v: Any, e: Any) -> Iterator[Any]:
            for x in ms(v, e):
                if not _next_tick() & _MASK:
                    _check()
                yield from mb(v, (*e, x))

        return _multi(bind)

    def c_reduce(self, node: Node, scope: Scope) -> Code:
        _, src, name, init, update = node
        ms = self.compile(src, scope).multi()
        i = self.compile(init, scope)
        u = self.compile(update, (*scope, name))
        fu = u.fn
        self.loops = True
        if u.single:

            def run(acc: Any, v: Any, e: Any) -> Any:
                for x in ms(v, e):
                    if not _next_tick() & _MASK:
                        _check()
                    acc = fu(acc, (*e, x))
                return acc

        else:

            def run(acc: Any, v: Any, e: Any) -> Any:
                for x in ms(v, e):
                    last = None
                    for last in fu(acc, (*e, x)):  # noqa: B007 - the last output is the new state
                        if not _next_tick() & _MASK:
                            _check()
                    acc = last
                return acc

        if i.single:
            fi = i.fn
            return _single(lambda v, e: run(fi(v, e), v, e))
        mi = i.fn

        def reduce_gen(v: Any, e: Any) -> Iterator[Any]:
            # libjq quirk (DUPN): after the first reduction the source runs on null
            src_input = v
            for acc in mi(v, e):
                yield run(acc, src_input, e)
                src_input = None

        return _multi(reduce_gen)

    def c_foreach(self, node: Node, scope: Scope) -> Code:
        _, src, name, init, update, extract = node
        ms = self.compile(src, scope).multi()
        mi = self.compile(init, scope).multi()
        inner = (*scope, name)
        mu = self.compile(update, inner).multi()
        mx = self.compile(extract, inner).multi() if extract is not None else None

        self.loops = True

        def foreach(v: Any, e: Any) -> Iterator[Any]:
            for acc in mi(v, e):
                for x in ms(v, e):
                    if not _next_tick() & _MASK:
                        _check()
                    e2 = (*e, x)
                    state = acc
                    acc = None
                    for u in mu(state, e2):
                        acc = u
                        if mx is None:
                            yield u
                        else:
                            yield from mx(u, e2)

        return _multi(foreach)

    # ------------------------------------------------------------------ assignment

    def c_assign(self, node: Node, scope: Scope) -> Code:
        _, op, lhs, rhs = node
        paths = self.path(lhs, scope)
        r = self.compile(rhs, scope)
        chain = self._field_chain(lhs)
        if chain and r.single and op != "|=":
            return self._assign_chain(op, chain, r.fn)
        if op == "|=":
            mu = r.multi()
            return _single(lambda v, e: _modify(v, e, paths, mu))
        if op == "=":

            def assign1(v: Any, e: Any, val: Any) -> Any:
                owned: jpaths.Owned = {}
                state = v
                for p, _ in paths(v, e, ()):
                    if not _next_tick() & _MASK:
                        _check()
                    state = jpaths.setpath(state, p, 0, val, owned)
                return state

            if r.single:
                fr = r.fn
                return _single(lambda v, e: assign1(v, e, fr(v, e)))
            mr = r.fn
            return _multi(lambda v, e: (assign1(v, e, val) for val in mr(v, e)))
        # arithmetic update: `lhs op= rhs` is `rhs as $x | lhs |= . op $x` (rhs on the original input)
        if op == "//=":

            def make(val: Any) -> Callable[[Any, Any], Iterable[Any]]:
                return lambda x, e: (x if x is not None and x is not False else val,)

        else:
            fn = _BINOPS[op[:-1]]

            def make(val: Any) -> Callable[[Any, Any], Iterable[Any]]:
                return lambda x, e: (fn(x, val),)

        if r.single:
            fr = r.fn
            return _single(lambda v, e: _modify(v, e, paths, make(fr(v, e))))
        mr = r.fn
        return _multi(lambda v, e: (_modify(v, e, paths, make(val)) for val in mr(v, e)))

    def _assign_chain(self, op: str, chain: tuple[str, ...], fr: Callable[..., Any]) -> Code:
        """``.a.b op= rhs`` with a single-output rhs: one path, no path generator."""
        set_chain = jpaths.set_chain
        getpath = jpaths.getpath
        if op == "=":
            return _single(lambda v, e: set_chain(v, chain, 0, fr(v, e)))
        if op == "//=":

            def alt_assign(v: Any, e: Any) -> Any:
                val = fr(v, e)
                x = getpath(v, chain)
                return set_chain(v, chain, 0, x if x is not None and x is not False else val)

            return _single(alt_assign)
        fn = _BINOPS[op[:-1]]

        def op_assign(v: Any, e: Any) -> Any:
            val = fr(v, e)
            return set_chain(v, chain, 0, fn(getpath(v, chain), val))

        return _single(op_assign)

    # ------------------------------------------------------------------ path mode

    def path(self, node: Node, scope: Scope) -> PathFn:
        tag = node[0]
        if tag == "identity":
            return lambda v, e, p: ((p, v),)
        if tag == "paren":
            return self.path(node[1], scope)
        if tag == "recurse":
            return lambda v, e, p: jpaths.recurse_paths(v, p)
        if tag == "index":
            _, term, key, opt = node
            pt = self.path(term, scope)
            kc = self.compile(key, scope)
            if kc.const is None or type(kc.const[0]) is dict:
                self.may_slice = True
            mk = kc.multi()

            def index_paths(v: Any, e: Any, p: Any) -> Iterator[tuple[Any, Any]]:
                for k in mk(v, e):
                    for tp, tv in pt(v, e, p):
                        if opt:
                            try:
                                r = _index(tv, k)
                            except JqError:
                                continue
                        else:
                            r = _index(tv, k)
                        yield (*tp, k), r

            return index_paths
        if tag == "each":
            _, term, opt = node
            pt = self.path(term, scope)
            it = jpaths.each_paths_opt if opt else jpaths.each_paths

            def each_paths(v: Any, e: Any, p: Any) -> Iterator[tuple[Any, Any]]:
                for tp, tv in pt(v, e, p):
                    yield from it(tv, tp)

            return each_paths
        if tag == "pipe":
            pa = self.path(node[1], scope)
            pb = self.path(node[2], scope)

            def pipe_paths(v: Any, e: Any, p: Any) -> Iterator[tuple[Any, Any]]:
                for ap, av in pa(v, e, p):
                    yield from pb(av, e, ap)

            return pipe_paths
        if tag == "comma":
            pa = self.path(node[1], scope)
            pb = self.path(node[2], scope)

            def comma_paths(v: Any, e: Any, p: Any) -> Iterator[tuple[Any, Any]]:
                yield from pa(v, e, p)
                yield from pb(v, e, p)

            return comma_paths
        if tag == "if":
            _, cond, then, other = node
            mc = self.compile(cond, scope).multi()
            pthen = self.path(then, scope)
            pother = self.path(other if other is not None else ("identity",), scope)

            def if_paths(v: Any, e: Any, p: Any) -> Iterator[tuple[Any, Any]]:
                for x in mc(v, e):
                    yield from (pthen if x is not None and x is not False else pother)(v, e, p)

            return if_paths
        if tag == "try":
            pb = self.path(node[1], scope)

            def try_paths(v: Any, e: Any, p: Any) -> Iterator[tuple[Any, Any]]:
                try:
                    for x in pb(v, e, p):
                        yield x
                except JqError:
                    return

            return try_paths
        if tag == "call":
            return self._path_call(node, scope)
        raise Unsupported(f"path expression {tag}")

    def _path_call(self, node: Node, scope: Scope) -> PathFn:
        _, name, args = node
        if not args:
            if name == "empty":
                return lambda v, e, p: ()
            if name == "first":
                return self.path(("index", ("identity",), ("literal", 0), False), scope)
            if name == "last":
                return self.path(("index", ("identity",), ("literal", -1), False), scope)
            if name == "recurse":
                return lambda v, e, p: jpaths.recurse_paths(v, p)
            if name == "error":
                return lambda v, e, p: _error0(v)
            if name in _TYPE_SELECTS:
                pred = _TYPE_SELECTS[name]
                return lambda v, e, p: ((p, v),) if pred(v) else ()
        elif len(args) == 1:
            if name == "select":
                mc = self.compile(args[0], scope).multi()

                def select_paths(v: Any, e: Any, p: Any) -> Iterator[tuple[Any, Any]]:
                    for x in mc(v, e):
                        if x is not None and x is not False:
                            yield p, v

                return select_paths
            if name == "error":
                mm = self.compile(args[0], scope).multi()

                def error_paths(v: Any, e: Any, p: Any) -> Iterator[tuple[Any, Any]]:
                    for m in mm(v, e):
                        raise builtin.error_value(m)
                    yield from ()

                return error_paths
        raise Unsupported(f"path expression {name}/{len(args)}")

    # ------------------------------------------------------------------ builtins

    def c_call(self, node: Node, scope: Scope) -> Code:
        _, name, args = node
        n = len(args)
        if n == 0:
            if name in _SIMPLE0:
                fn0 = _SIMPLE0[name]
                return _single(lambda v, e: fn0(v))
            if name == "empty":
                return _multi(lambda v, e: ())
            if name == "recurse":
                return _multi(lambda v, e: jpaths.recurse_values(v))
            if name in _TYPE_SELECTS:
                pred = _TYPE_SELECTS[name]
                return _multi(lambda v, e: (v,) if pred(v) else ())
            raise Unsupported(f"{name}/0")
        if n == 1 and name in _SIMPLE1:
            if name == "nth":
                self.may_slice = True  # .[$n] with an object $n slices
            fn1 = _SIMPLE1[name]
            a = self.compile(args[0], scope)
            if a.single:
                fa = a.fn
                if a.const is not None:
                    ac = a.const[0]
                    return _single(lambda v, e: fn1(v, ac))
                return _single(lambda v, e: fn1(v, fa(v, e)))
            ma = a.fn

            def simple1(v: Any, e: Any) -> Iterator[Any]:
                for x in ma(v, e):
                    yield fn1(v, x)

            return _multi(simple1)
        method = getattr(self, f"b_{name}_{n}", None)
        if method is None:
            raise Unsupported(f"{name}/{n}")
        return method(args, scope)

    def b_error_1(self, args: tuple[Node, ...], scope: Scope) -> Code:
        mm = self.compile(args[0], scope).multi()

        def error1(v: Any, e: Any) -> Iterator[Any]:
            for m in mm(v, e):
                raise builtin.error_value(m)
            yield from ()

        return _multi(error1)

    def b_select_1(self, args: tuple[Node, ...], scope: Scope) -> Code:
        c = self.compile(args[0], scope)
        if c.single:
            fc = c.fn

            def select1(v: Any, e: Any) -> Iterable[Any]:
                x = fc(v, e)
                return (v,) if x is not None and x is not False else ()

            return _multi(select1)
        mc = c.fn

        def select(v: Any, e: Any) -> Iterator[Any]:
            for x in mc(v, e):
                if x is not None and x is not False:
                    yield v

        return _multi(select)

    def b_map_1(self, args: tuple[Node, ...], scope: Scope) -> Code:
        f = self.compile(args[0], scope)
        ff = f.fn
        if f.single:
            return _single(lambda v, e: [ff(x, e) for x in jpaths.each(v)])

        self.loops = True

        def map_(v: Any, e: Any) -> list[Any]:
            out: list[Any] = []
            for x in jpaths.each(v):
                if not _next_tick() & _MASK:
                    _check()
                out.extend(ff(x, e))
            return out

        return _single(map_)

    def _keys_of(self, args: tuple[Node, ...], scope: Scope) -> Callable[[Any, Any], list[Any]]:
        """``map([f])`` evaluated on the input."""
        mf = self.compile(args[0], scope).multi()
        return lambda v, e: [list(mf(x, e)) for x in jpaths.each(v)]

    def b_sort_by_1(self, args: tuple[Node, ...], scope: Scope) -> Code:
        keys = self._keys_of(args, scope)
        return _single(lambda v, e: builtin.sort_by_keys(v, keys(v, e)))

    def b_group_by_1(self, args: tuple[Node, ...], scope: Scope) -> Code:
        keys = self._keys_of(args, scope)
        return _single(lambda v, e: builtin.group_by_keys(v, keys(v, e)))

    def b_unique_by_1(self, args: tuple[Node, ...], scope: Scope) -> Code:
        keys = self._keys_of(args, scope)
        return _single(lambda v, e: builtin.unique_by_keys(v, keys(v, e)))

    def b_min_by_1(self, args: tuple[Node, ...], scope: Scope) -> Code:
        keys = self._keys_of(args, scope)
        return _single(lambda v, e: builtin.minmax(v, keys(v, e), True))

    def b_max_by_1(self, args: tuple[Node, ...], scope: Scope) -> Code:
        keys = self._keys_of(args, scope)
        return _single(lambda v, e: builtin.minmax(v, keys(v, e), False))

    def b_first_1(self, args: tuple[Node, ...], scope: Scope) -> Code:
        mf = self.compile(args[0], scope).multi()
        return _multi(lambda v, e: builtin.first_of(mf(v, e)))

    def b_last_1(self, args: tuple[Node, ...], scope: Scope) -> Code:
        mf = self.compile(args[0], scope).multi()
        missing = object()

        def last(v: Any, e: Any) -> Iterable[Any]:
            x = missing
            for x in mf(v, e):  # noqa: B007 - the generator ticks, if it loops
                pass
            return () if x is missing else (x,)

        return _multi(last)

    def b_isempty_1(self, args: tuple[Node, ...], scope: Scope) -> Code:
        mf = self.compile(args[0], scope).multi()

        def isempty(v: Any, e: Any) -> bool:
            for _ in mf(v, e):
                return False
            return True

        return _single(isempty)

    def _any_all(
        self, gen: Callable[[Any, Any], Iterable[Any]], cond: Node, scope: Scope, is_any: bool
    ) -> Code:
        cond_code = self.compile(cond, scope)
        mc = cond_code.multi()
        if cond_code.single:  # no product: a loop over the generator (which ticks, if it loops)

            def any_all1(v: Any, e: Any) -> bool:
                for x in gen(v, e):
                    for c in mc(x, e):
                        if _truthy(c) == is_any:
                            return is_any
                return not is_any

            return _single(any_all1)
        self.loops = True

        def any_all(v: Any, e: Any) -> bool:
            for x in gen(v, e):
                if not _next_tick() & _MASK:
                    _check()
                for c in mc(x, e):
                    if _truthy(c) == is_any:
                        return is_any
            return not is_any

        return _single(any_all)

    def b_any_1(self, args: tuple[Node, ...], scope: Scope) -> Code:
        return self._any_all(lambda v, e: jpaths.each(v), args[0], scope, True)

    def b_all_1(self, args: tuple[Node, ...], scope: Scope) -> Code:
        return self._any_all(lambda v, e: jpaths.each(v), args[0], scope, False)

    def b_any_2(self, args: tuple[Node, ...], scope: Scope) -> Code:
        return self._any_all(self.compile(args[0], scope).multi(), args[1], scope, True)

    def b_all_2(self, args: tuple[Node, ...], scope: Scope) -> Code:
        return self._any_all(self.compile(args[0], scope).multi(), args[1], scope, False)

    def b_add_1(self, args: tuple[Node, ...], scope: Scope) -> Code:
        mf = self.compile(args[0], scope).multi()
        return _single(lambda v, e: _add_all(mf(v, e)))

    def b_recurse_1(self, args: tuple[Node, ...], scope: Scope) -> Code:
        mf = self.compile(args[0], scope).multi()

        self.loops = True

        def rec(v: Any, e: Any) -> Iterator[Any]:
            if not _next_tick() & _MASK:
                _check()
            yield v
            for x in mf(v, e):
                yield from rec(x, e)

        return _multi(rec)

    def b_recurse_2(self, args: tuple[Node, ...], scope: Scope) -> Code:
        mf = self.compile(args[0], scope).multi()
        mc = self.compile(args[1], scope).multi()

        self.loops = True

        def rec(v: Any, e: Any) -> Iterator[Any]:
            if not _next_tick() & _MASK:
                _check()
            yield v
            for x in mf(v, e):
                for c in mc(x, e):
                    if c is not None and c is not False:
                        yield from rec(x, e)

        return _multi(rec)

    def b_with_entries_1(self, args: tuple[Node, ...], scope: Scope) -> Code:
        m = self.b_map_1(args, scope).fn
        return _single(lambda v, e: builtin.from_entries(m(builtin.to_entries(v), e)))

    def b_map_values_1(self, args: tuple[Node, ...], scope: Scope) -> Code:
        mu = self.compile(args[0], scope).multi()
        paths = self.path(("each", ("identity",), False), scope)
        return _single(lambda v, e: _modify(v, e, paths, mu))

    def b_del_1(self, args: tuple[Node, ...], scope: Scope) -> Code:
        paths = self.path(args[0], scope)
        return _single(lambda v, e: jpaths.delpaths(v, [p for p, _ in paths(v, e, ())]))


def _modify(v: Any, e: Any, paths: PathFn, update: Callable[[Any, Any], Iterable[Any]]) -> Any:
    """``_modify(paths; update)`` of jq 1.8: first output of ``update`` or delete the path."""
    owned: jpaths.Owned = {}
    state = v
    dels: list[tuple[Any, ...]] = []
    for p, _ in paths(v, e, ()):
        if not _next_tick() & _MASK:
            _check()
        x = jpaths.getpath(state, p)
        if owned and (type(x) is dict or type(x) is list):
            jpaths.disown(x, owned)
        for u in update(x, e):
            state = jpaths.setpath(state, p, 0, u, owned)
            break
        else:
            dels.append(p)
    if dels:
        state = jpaths.delpaths(state, dels)
    return state


def field_chain(node: Node) -> tuple[str, ...] | None:
    """``.a.b.c`` (constant string keys, no ``?``) as a key tuple."""
    chain: list[str] = []
    while node[0] == "index":
        _, term, key, opt = node
        if opt or key[0] != "literal" or type(key[1]) is not str:
            return None
        chain.append(key[1])
        node = term
    while node[0] == "paren":
        node = node[1]
    if node[0] != "identity":
        return None
    return tuple(reversed(chain))


def compile_ast(node: Node) -> tuple[Code, bool, bool]:
    """Compile a parsed program: its code, whether it may slice arrays, whether it loops.

    A program that loops calls :func:`clock.tick` and must run under a
    :class:`clock.deadline`. Raises :class:`Unsupported` outside the native subset.
    """
    compiler = Compiler()
    code = compiler.compile(node, ())
    return code, compiler.may_slice, compiler.loops
