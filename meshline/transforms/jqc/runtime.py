"""jq 1.8 value semantics on plain Python JSON values (the libjq that jq.py bundles).

Numbers follow libjq with decNumber: a number read from the input or the program is a
*literal* that keeps its decimal text (``tojson`` prints ``1.0`` as ``1.0``, ``1e-7`` as ``1E-7``),
while arithmetic produces IEEE doubles printed by ``jvp_dtoa_fmt`` (``1e-07``). In Python:

- a literal is the ``int``/``float`` we were given; its decimal text is ``str(int)`` or
  ``repr(float)`` (what ``json.dumps`` -- and so jq.py -- writes);
- a computed double is normalised by :func:`cnum`: integral values within 2**53 become ``int``,
  others stay ``float``. So an ``int`` always prints as ``str(i)`` and an integral ``float``
  below 2**53 is always a literal; for the remaining floats we compute both renderings and
  raise :class:`Fallback` when they disagree (only very small/large magnitudes).
- ``nan``, infinities and a computed ``-0.0`` never enter the native path (:class:`Fallback`).
- ints beyond 2**53 are literals: compared exactly with each other (as decNumber does), and
  a comparison whose outcome depends on literal-vs-double semantics raises :class:`Fallback`.

Outputs are normalised like jq.py's ``_jv_to_python`` (:func:`norm`): every number goes
through a double, integral doubles become ``int``.
"""

from __future__ import annotations

import itertools
import math
import re
import threading
import time
from collections.abc import Iterable, Iterator
from decimal import ROUND_HALF_EVEN, Context, Decimal
from functools import cmp_to_key
from typing import Any

import orjson

from meshline.transforms.jqc.errors import Fallback, JqError, JqTimeout

M = 2**53
MF = float(M)
INT_MAX = 2**31 - 1
INT_MIN = -(2**31)
DBL_MAX = 1.7976931348623157e308
_INF = math.inf

_CTX17 = Context(prec=17, rounding=ROUND_HALF_EVEN, Emax=384, Emin=-383, traps=[])

# ----------------------------------------------------------------------------- deadlines

# Every loop of the compiled closures (each output through a pipe, a reduction, a recursion
# ...) counts one tick: ``if not next_tick() & MASK: check_deadline()``, inline (a call
# would cost more than the count). One tick in TICK_EVERY reads the clock and compares it
# with the calling thread's deadline. Straight-line programs (pygen) have no loop and
# never tick.
TICK_EVERY = 1024  # a power of two
MASK = TICK_EVERY - 1
next_tick = itertools.count(1).__next__
deadlines = threading.local()  # .at: the calling thread's deadline (time.monotonic()), or None


def tick() -> None:
    if not next_tick() & MASK:
        check_deadline()


def check_deadline() -> None:
    """Raise :class:`JqTimeout` when the calling thread's deadline has passed."""
    at = getattr(deadlines, "at", None)
    if at is not None and time.monotonic() > at:
        raise JqTimeout()


class deadline:
    """Within the block, compiled code of this thread raises :class:`JqTimeout` after ``timeout`` s."""

    __slots__ = ("_saved", "_timeout")

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout

    def __enter__(self) -> None:
        self._saved = getattr(deadlines, "at", None)
        deadlines.at = time.monotonic() + self._timeout

    def __exit__(self, *exc: object) -> None:
        deadlines.at = self._saved


# ----------------------------------------------------------------------------- kinds


def kind(v: Any) -> str:
    """jq's ``type`` name of ``v``."""
    t = type(v)
    if t is str:
        return "string"
    if t is dict:
        return "object"
    if t is int or t is float:
        return "number"
    if t is list:
        return "array"
    if t is bool:
        return "boolean"
    if v is None:
        return "null"
    raise Fallback


def korder(v: Any) -> int:
    """jv_kind ordinal: null < false < true < number < string < array < object."""
    t = type(v)
    if t is str:
        return 5
    if t is int or t is float:
        return 4
    if t is dict:
        return 7
    if t is list:
        return 6
    if v is None:
        return 1
    if v is False:
        return 2
    if v is True:
        return 3
    raise Fallback


def truthy(v: Any) -> bool:
    return v is not None and v is not False


# ----------------------------------------------------------------------------- numbers


def cnum(d: float) -> int | float:
    """Normalise a computed double."""
    if -MF <= d <= MF:
        i = int(d)
        if i == d:
            if i == 0 and math.copysign(1.0, d) < 0:
                raise Fallback  # computed -0 prints as "-0"
            return i
        return d
    if d != d or d == _INF or d == -_INF:
        raise Fallback
    return d


def to_double(x: int | float) -> float:
    """``jv_number_value``: a literal int is reduced to 17 digits, then read as a double."""
    if type(x) is float:
        return x
    if -M <= x <= M:
        return float(x)
    return float(_CTX17.plus(Decimal(x)))


def _dtoa_fmt(x: float) -> str:
    """``jvp_dtoa_fmt``: how libjq prints a computed double."""
    if x == 0:
        return "-0" if math.copysign(1.0, x) < 0 else "0"
    r = repr(x)
    sign = ""
    if r[0] == "-":
        sign = "-"
        r = r[1:]
    mant, _, exp = r.partition("e")
    ip, _, fp = mant.partition(".")
    digits = ip + fp
    decpt = len(ip) + (int(exp) if exp else 0)
    stripped = digits.lstrip("0")
    decpt -= len(digits) - len(stripped)
    digits = stripped.rstrip("0")
    n = len(digits)
    if decpt <= -4 or decpt > n + 15:
        e = decpt - 1
        s = digits[0] + ("." + digits[1:] if n > 1 else "") + "e" + ("-" if e < 0 else "+") + f"{abs(e):02d}"
    elif decpt <= 0:
        s = "0." + "0" * (-decpt) + digits
    elif n <= decpt:
        s = digits + "0" * (decpt - n)
    else:
        s = digits[:decpt] + "." + digits[decpt:]
    return sign + s


def fmt_num(x: int | float) -> str:
    """How jq prints the number ``x`` (``tojson``/``tostring``/error messages)."""
    if type(x) is int:
        return str(x)
    r = repr(x)
    if -MF < x < MF and "e" not in r:
        return r  # plain decimal: the literal and the computed renderings agree
    lit = str(Decimal(r))
    if -MF < x < MF and float(x).is_integer():
        return lit  # an integral float below 2**53 is always a literal (see module doc)
    if lit != _dtoa_fmt(x):
        raise Fallback  # literal and computed renderings differ: we can't tell which it is
    return lit


def norm(v: Any) -> Any:
    """jq.py's rendering of a value: numbers through doubles, integral ones as ``int``.

    Returns ``v`` itself when nothing changes (the common case); otherwise copies only the
    containers on the way to a changed number.
    """
    t = type(v)
    if t is dict or t is list:
        return v if _clean(v) else _norm_walk(v)
    if t is float:
        return _norm_float(v) if v.is_integer() else v
    if t is int and not -M <= v <= M:
        return _norm_big(v)
    return v


def _clean(v: Any) -> bool:
    """Whether the container ``v`` holds no number that jq.py would render differently."""
    for x in v.values() if type(v) is dict else v:
        tx = type(x)
        if tx is str or tx is bool or x is None:
            continue
        if tx is int:
            if -M <= x <= M:
                continue
            return False
        if tx is dict or tx is list:
            if _clean(x):
                continue
            return False
        if tx is float:
            if x.is_integer():
                return False
            continue
        return False
    return True


def _norm_walk(v: Any) -> Any:
    t = type(v)
    if t is dict:
        new = None
        for k, x in v.items():
            tx = type(x)
            if tx is str or tx is bool or x is None:
                continue
            if tx is int:
                if -M <= x <= M:
                    continue
                y = _norm_big(x)
            elif tx is float:
                if not x.is_integer():
                    continue
                y = _norm_float(x)
            else:
                y = _norm_walk(x)
                if y is x:
                    continue
            if new is None:
                new = dict(v)
            new[k] = y
        return v if new is None else new
    if t is list:
        newl = None
        for i, x in enumerate(v):
            tx = type(x)
            if tx is str or tx is bool or x is None:
                continue
            if tx is int:
                if -M <= x <= M:
                    continue
                y = _norm_big(x)
            elif tx is float:
                if not x.is_integer():
                    continue
                y = _norm_float(x)
            else:
                y = _norm_walk(x)
                if y is x:
                    continue
            if newl is None:
                newl = list(v)
            newl[i] = y
        return v if newl is None else newl
    if t is float:
        return _norm_float(v) if v.is_integer() else v
    if t is int and not -M <= v <= M:
        return _norm_big(v)
    return v


def _norm_float(x: float) -> int | float:
    if x != x:
        return None  # type: ignore[return-value]
    if x == _INF:
        return DBL_MAX
    if x == -_INF:
        return -DBL_MAX
    return int(x)


def _norm_big(x: int) -> int | float:
    d = to_double(x)
    if d == _INF:
        return DBL_MAX
    if d == -_INF:
        return -DBL_MAX
    return int(d)


def _numcmp_slow(a: int | float, b: int | float) -> int:
    """Compare numbers when literal (decimal) and double semantics might disagree."""
    da = Decimal(a) if type(a) is int else Decimal(repr(a))
    db = Decimal(b) if type(b) is int else Decimal(repr(b))
    c1 = (da > db) - (da < db)
    if type(a) is int and type(b) is int and not -M <= a <= M and not -M <= b <= M:
        return c1  # two big ints are both literals: exact decimal comparison
    fa, fb = to_double(a), to_double(b)
    c2 = (fa > fb) - (fa < fb)
    if c1 != c2:
        raise Fallback
    return c1


def numcmp(a: int | float, b: int | float) -> int:
    ta = type(a)
    tb = type(b)
    if ta is int:
        if not -M <= a <= M:
            return _numcmp_slow(a, b)
        if tb is int and not -M <= b <= M:
            return _numcmp_slow(a, b)
    elif tb is int and not -M <= b <= M:
        return _numcmp_slow(a, b)
    return (a > b) - (a < b)


# ----------------------------------------------------------------------------- equality / order


def eq(a: Any, b: Any) -> bool:
    """``jv_equal``."""
    if a is b:
        return True
    ta = type(a)
    tb = type(b)
    if ta is str:
        return tb is str and a == b
    if ta is int or ta is float:
        if tb is int or tb is float:
            if ta is tb and (ta is float or (-M <= a <= M and -M <= b <= M)):
                return a == b
            return numcmp(a, b) == 0
        return False
    if ta is dict:
        if tb is not dict or len(a) != len(b):
            return False
        for k, x in a.items():
            if k not in b or not eq(x, b[k]):
                return False
        return True
    if ta is list:
        if tb is not list or len(a) != len(b):
            return False
        if _same_storage(a, b):
            return True  # libjq's identity shortcut (see _array_slice)
        for x, y in zip(a, b):
            if not eq(x, y):
                return False
        return True
    return False  # null/true/false are singletons: `a is b` handled equality


def cmp(a: Any, b: Any) -> int:
    """``jv_cmp``: jq's total order."""
    ka = korder(a)
    kb = korder(b)
    if ka != kb:
        return -1 if ka < kb else 1
    if ka == 4:
        return numcmp(a, b)
    if ka == 5:
        return (a > b) - (a < b)
    if ka == 6:
        for x, y in zip(a, b):
            r = cmp(x, y)
            if r:
                return r
        return (len(a) > len(b)) - (len(a) < len(b))
    if ka == 7:
        keys_a = sorted(a)
        keys_b = sorted(b)
        if keys_a != keys_b:
            return 1 if keys_a > keys_b else -1
        for k in keys_a:
            r = cmp(a[k], b[k])
            if r:
                return r
        return 0
    return 0


cmp_key = cmp_to_key(cmp)


def op_eq(a: Any, b: Any) -> bool:
    return eq(a, b)


def op_ne(a: Any, b: Any) -> bool:
    return not eq(a, b)


def _fast_num_pair(a: Any, b: Any) -> bool:
    """Two numbers that Python compares as :func:`numcmp` does (floats, ints within 2**53)."""
    ta = type(a)
    tb = type(b)
    if ta is float:
        return tb is float or (tb is int and -M <= b <= M)
    if ta is int and -M <= a <= M:
        return tb is float or (tb is int and -M <= b <= M)
    return False


def op_lt(a: Any, b: Any) -> bool:
    if _fast_num_pair(a, b) or (type(a) is str and type(b) is str):
        return a < b
    return cmp(a, b) < 0


def op_le(a: Any, b: Any) -> bool:
    if _fast_num_pair(a, b) or (type(a) is str and type(b) is str):
        return a <= b
    return cmp(a, b) <= 0


def op_gt(a: Any, b: Any) -> bool:
    if _fast_num_pair(a, b) or (type(a) is str and type(b) is str):
        return a > b
    return cmp(a, b) > 0


def op_ge(a: Any, b: Any) -> bool:
    if _fast_num_pair(a, b) or (type(a) is str and type(b) is str):
        return a >= b
    return cmp(a, b) >= 0


# ----------------------------------------------------------------------------- dumping

_ESC = {chr(c): f"\\u{c:04x}" for c in range(0x20)}
_ESC.update({"\b": "\\b", "\t": "\\t", "\r": "\\r", "\n": "\\n", "\f": "\\f"})
_ESC.update({'"': '\\"', "\\": "\\\\", "\x7f": "\\u007f"})
_ESC_RE = re.compile('["\\\\\x00-\x1f\x7f]')


def dump_str(s: str) -> str:
    if _ESC_RE.search(s) is None:
        return '"' + s + '"'
    return '"' + _ESC_RE.sub(lambda m: _ESC[m.group()], s) + '"'


def dump(v: Any) -> str:
    """``jv_dump_string(v, 0)``: compact JSON as jq writes it."""
    t = type(v)
    if t is str:
        return dump_str(v)
    if t is int or t is float:
        return fmt_num(v)
    if t is dict:
        return "{" + ",".join(dump_str(k) + ":" + dump(x) for k, x in v.items()) + "}"
    if t is list:
        return "[" + ",".join([dump(x) for x in v]) + "]"
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    raise Fallback


def trunc(v: Any) -> str:
    """``jv_dump_string_trunc(v, buf, 30)``, used in error messages."""
    if type(v) is str and len(v.encode()) > 30:
        v = v[:30]
    s = dump(v)
    b = s.encode()
    if len(b) > 29:
        delim = {'"': '"', "[": "]", "{": "}"}.get(s[0], "")
        n = 30 - (5 if delim else 4)
        while n > 0 and (b[n] & 0xC0) == 0x80:
            n -= 1
        return b[:n].decode() + "..." + delim
    return s


def type_error(v: Any, msg: str) -> JqError:
    return JqError(f"{kind(v)} ({trunc(v)}) {msg}")


def type_error2(a: Any, b: Any, msg: str) -> JqError:
    return JqError(f"{kind(a)} ({trunc(a)}) and {kind(b)} ({trunc(b)}) {msg}")


# ----------------------------------------------------------------------------- arithmetic


def add(a: Any, b: Any) -> Any:
    ta = type(a)
    tb = type(b)
    if ta is int and tb is int:
        if -M <= a <= M and -M <= b <= M:
            r = a + b
            if -M <= r <= M:
                return r
            return cnum(float(r))
        return cnum(to_double(a) + to_double(b))
    if _fast_num_pair(a, b):
        return cnum(a + b)
    if (ta is int or ta is float) and (tb is int or tb is float):
        return cnum(to_double(a) + to_double(b))
    if a is None:
        return b
    if b is None:
        return a
    if ta is str and tb is str:
        return a + b
    if ta is list and tb is list:
        return a + b if b else a  # jv_array_concat(a, []) is a itself
    if ta is dict and tb is dict:
        r = dict(a)
        r.update(b)
        return r
    raise type_error2(a, b, "cannot be added")


def sub(a: Any, b: Any) -> Any:
    ta = type(a)
    tb = type(b)
    if ta is int and tb is int:
        if -M <= a <= M and -M <= b <= M:
            r = a - b
            if -M <= r <= M:
                return r
            return cnum(float(r))
        return cnum(to_double(a) - to_double(b))
    if (ta is int or ta is float) and (tb is int or tb is float):
        return cnum(to_double(a) - to_double(b))
    if ta is list and tb is list:
        return [x for x in a if not any(eq(x, y) for y in b)]
    raise type_error2(a, b, "cannot be subtracted")


def _repeat(s: str, d: float) -> Any:
    if d < 0:
        return None
    n = INT_MAX if d > INT_MAX else int(d)
    if len(s.encode()) * n >= INT_MAX - 8:
        raise JqError("Repeat string result too long")
    if len(s) * n > 10_000_000:
        raise Fallback
    return s * n


def _deep_merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    r = dict(a)
    for k, v in b.items():
        x = r.get(k)
        if type(x) is dict and type(v) is dict:
            r[k] = _deep_merge(x, v)
        else:
            r[k] = v
    return r


def mul(a: Any, b: Any) -> Any:
    ta = type(a)
    tb = type(b)
    if ta is int and tb is int:
        if -M <= a <= M and -M <= b <= M:
            r = a * b
            if r == 0 and (a < 0 or b < 0):
                raise Fallback  # IEEE -0
            if -M <= r <= M:
                return r
            return cnum(float(r))
        return cnum(to_double(a) * to_double(b))
    if _fast_num_pair(a, b):
        return cnum(a * b)  # Python converts an int within 2**53 to a double exactly
    an = ta is int or ta is float
    bn = tb is int or tb is float
    if an and bn:
        return cnum(to_double(a) * to_double(b))
    if ta is str and bn:
        return _repeat(a, to_double(b))
    if an and tb is str:
        return _repeat(b, to_double(a))
    if ta is dict and tb is dict:
        return _deep_merge(a, b)
    raise type_error2(a, b, "cannot be multiplied")


def split_str(s: str, sep: str) -> list[str]:
    if sep == "":
        return list(s)
    if s == "":
        return []
    return s.split(sep)


def div(a: Any, b: Any) -> Any:
    ta = type(a)
    tb = type(b)
    if (ta is int or ta is float) and (tb is int or tb is float):
        db = to_double(b)
        if db == 0.0:
            raise type_error2(a, b, "cannot be divided because the divisor is zero")
        try:
            return cnum(to_double(a) / db)
        except OverflowError:
            raise Fallback from None
    if ta is str and tb is str:
        return split_str(a, b)
    raise type_error2(a, b, "cannot be divided")


def _dtoi(n: float) -> int:
    if n < -(2.0**63):
        return -(2**63)
    if n >= 2.0**63:
        return 2**63 - 1
    return int(n)


def mod(a: Any, b: Any) -> Any:
    ta = type(a)
    tb = type(b)
    if (ta is int or ta is float) and (tb is int or tb is float):
        bi = _dtoi(to_double(b))
        if bi == 0:
            raise type_error2(a, b, "cannot be divided (remainder) because the divisor is zero")
        if bi == -1:
            return 0
        ai = _dtoi(to_double(a))
        r = abs(ai) % abs(bi)
        if ai < 0:
            r = -r
        return r if -M <= r <= M else cnum(float(r))
    raise type_error2(a, b, "cannot be divided (remainder)")


def neg(v: Any) -> Any:
    t = type(v)
    if t is int:
        if v == 0:
            raise Fallback  # a literal 0 negates to "0", a computed one to "-0"
        return -v
    if t is float:
        return -v if v else 0.0  # decNumberMinus(0.0) is 0.0, never -0.0
    raise type_error(v, "cannot be negated")


# ----------------------------------------------------------------------------- indexing


def _slice_bounds(n: int, k: dict[str, Any]) -> tuple[int, int]:
    if "start" not in k or "end" not in k:
        raise JqError("Array/string slice indices must be integers")
    start = k["start"]
    end = k["end"]
    if start is None:
        start = 0
    if end is None:
        end = n
    if type(start) not in (int, float) or type(end) not in (int, float):
        raise JqError("Array/string slice indices must be integers")
    ds = to_double(start)
    de = to_double(end)
    if ds < 0:
        ds += n
    if ds < 0:
        ds = 0
    if ds > n:
        ds = n
    s = INT_MAX if ds > INT_MAX else int(ds)
    if de < 0:
        de += n
    if de < 0:
        de = s
    e = INT_MAX if de > INT_MAX else int(de)
    if e > n:
        e = n
    if e < n and e < de:
        e += 1
    if e < s:
        e = s
    return s, e


# libjq array slices are views (same storage, an offset), and its equality shortcut
# ``jvp_equal`` treats two arrays with the same storage and length as equal without looking
# at the offset: ``[1,2,3] | .[1:] == .[:2]`` is true. We mirror that: array slices made
# during a run are registered (per thread, cleared after the run) with their storage and offset.
_tls = threading.local()


def _slice_registry() -> dict[int, tuple[list[Any], list[Any], int]]:
    try:
        return _tls.slices  # type: ignore[no-any-return]
    except AttributeError:
        reg: dict[int, tuple[list[Any], list[Any], int]] = {}
        _tls.slices = reg
        return reg


def reset_slices() -> None:
    reg = getattr(_tls, "slices", None)
    if reg:
        reg.clear()


def _array_slice(t: list[Any], s: int, e: int) -> list[Any]:
    r = t[s:e]
    if e > s:
        reg = _slice_registry()
        info = reg.get(id(t))
        if info is not None and info[0] is t:
            base, off = info[1], info[2] + s
        else:
            base, off = t, s
        if off < 65536:  # libjq copies when the 16-bit offset would overflow
            reg[id(r)] = (r, base, off)
    return r


def _same_storage(a: list[Any], b: list[Any]) -> bool:
    reg = getattr(_tls, "slices", None)
    if not reg:
        return False
    ia = reg.get(id(a))
    ib = reg.get(id(b))
    base_a = ia[1] if ia is not None and ia[0] is a else a
    base_b = ib[1] if ib is not None and ib[0] is b else b
    return base_a is base_b


def _array_indexes(a: list[Any], b: list[Any]) -> list[int]:
    res: list[int] = []
    if not b:
        return res
    for ai in range(len(a)):
        if all(ai + bi < len(a) and eq(a[ai + bi], y) for bi, y in enumerate(b)):
            res.append(ai)
    return res


def index(t: Any, k: Any) -> Any:
    """``jv_get``: ``t[k]`` with jq's rules (null for missing keys/indices)."""
    tt = type(t)
    tk = type(k)
    if tt is dict:
        if tk is str:
            return t.get(k)
    elif tt is list:
        if tk is int or tk is float:
            i = k if tk is int else int(k)
            n = len(t)
            if i < 0:
                i += n
            return t[i] if 0 <= i < n else None
        if tk is dict:
            s, e = _slice_bounds(len(t), k)
            return _array_slice(t, s, e)
        if tk is list:
            return _array_indexes(t, k)
    elif t is None:
        if tk is str or tk is int or tk is float or tk is dict:
            return None
    elif tt is str and tk is dict:
        s, e = _slice_bounds(len(t), k)
        return t[s:e]
    raise JqError(f"Cannot index {kind(t)} with {kind(k)} ({trunc(k)})")


def each(v: Any) -> Iterable[Any]:
    t = type(v)
    if t is list:
        return v
    if t is dict:
        return v.values()
    raise JqError(f"Cannot iterate over {kind(v)} ({trunc(v)})")


def each_opt(v: Any) -> Iterable[Any]:
    t = type(v)
    if t is list:
        return v
    if t is dict:
        return v.values()
    return ()


def each_paths(v: Any, path: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], Any]]:
    t = type(v)
    if t is list:
        for i, x in enumerate(v):
            yield path + (i,), x
    elif t is dict:
        for k, x in v.items():
            yield path + (k,), x
    else:
        raise JqError(f"Cannot iterate over {kind(v)} ({trunc(v)})")


def each_paths_opt(v: Any, path: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], Any]]:
    t = type(v)
    if t is list:
        for i, x in enumerate(v):
            yield path + (i,), x
    elif t is dict:
        for k, x in v.items():
            yield path + (k,), x


def recurse_values(v: Any) -> Iterator[Any]:
    """``..`` == ``recurse(.[]?)``, pre-order."""
    tick()
    yield v
    t = type(v)
    if t is list:
        for x in v:
            yield from recurse_values(x)
    elif t is dict:
        for x in v.values():
            yield from recurse_values(x)


def recurse_paths(v: Any, path: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], Any]]:
    tick()
    yield path, v
    t = type(v)
    if t is list:
        for i, x in enumerate(v):
            yield from recurse_paths(x, path + (i,))
    elif t is dict:
        for k, x in v.items():
            yield from recurse_paths(x, path + (k,))


# ----------------------------------------------------------------------------- paths (copy on write)

Owned = dict[int, Any]


def set_key(t: Any, k: Any, v: Any, owned: Owned | None) -> Any:
    """``jv_set``: ``t`` with ``t[k] = v``; copies ``t`` unless this update created it (owned)."""
    tt = type(t)
    tk = type(k)
    if tk is str and (tt is dict or t is None):
        if tt is dict:
            if owned is not None and id(t) in owned:
                t[k] = v
                return t
            d = dict(t)
            d[k] = v
        else:
            d = {k: v}
        if owned is not None:
            owned[id(d)] = d
        return d
    if (tk is int or tk is float) and (tt is list or t is None):
        dk = to_double(k)
        i = INT_MIN if dk < INT_MIN else INT_MAX if dk > INT_MAX else int(dk)
        if tt is list:
            if owned is not None and id(t) in owned:
                r = t
            else:
                r = list(t)
                if owned is not None:
                    owned[id(r)] = r
        else:
            r = []
            if owned is not None:
                owned[id(r)] = r
        n = len(r)
        if i < 0:
            i += n
            if i < 0:
                raise JqError("Out of bounds negative array index")
        if i >= n:
            if i - n > 1_000_000:
                raise Fallback
            r.extend([None] * (i - n + 1))
        r[i] = v
        return r
    if tk is dict and (tt is list or t is None):
        raise Fallback  # slice assignment
    if tk is dict and tt is str:
        raise JqError("Cannot update string slices")
    raise JqError(f"Cannot update field at {kind(k)} index of {kind(t)}")


def set_chain(t: Any, keys: tuple[str, ...], i: int, value: Any) -> Any:
    """``setpath`` for a path of string keys, copying each object on the way."""
    k = keys[i]
    if type(t) is dict:
        r = dict(t)
        r[k] = value if i + 1 == len(keys) else set_chain(t.get(k), keys, i + 1, value)
        return r
    if t is None:
        return {k: value if i + 1 == len(keys) else set_chain(None, keys, i + 1, value)}
    index(t, k)  # raises jq's error
    raise AssertionError


def getpath(root: Any, path: tuple[Any, ...]) -> Any:
    for k in path:
        root = index(root, k)
    return root


def setpath(root: Any, path: tuple[Any, ...], i: int, value: Any, owned: Owned | None) -> Any:
    if i == len(path):
        return value
    k = path[i]
    if type(k) is dict:
        raise Fallback  # slice paths
    sub = index(root, k)
    return set_key(root, k, setpath(sub, path, i + 1, value, owned), owned)


def disown(v: Any, owned: Owned) -> None:
    """``v`` becomes visible to user code: it (and what it holds) must not be mutated any more."""
    if id(v) in owned and owned[id(v)] is v:
        del owned[id(v)]
        for x in v.values() if type(v) is dict else v:
            if type(x) is dict or type(x) is list:
                disown(x, owned)


def _dels(t: Any, keys: list[Any]) -> Any:
    if t is None or not keys:
        return t
    tt = type(t)
    if tt is list:
        n = len(t)
        drop = set()
        for k in keys:
            tk = type(k)
            if tk is int or tk is float:
                d = to_double(k)
                drop.add(n + int(d) if d < 0 else int(d))
            elif tk is dict:
                raise Fallback
            else:
                raise JqError(f"Cannot delete {kind(k)} element of array")
        return [x for i, x in enumerate(t) if i not in drop]
    if tt is dict:
        r = dict(t)
        for k in keys:
            if type(k) is not str:
                raise JqError(f"Cannot delete {kind(k)} field of object")
            r.pop(k, None)
        return r
    raise JqError(f"Cannot delete fields from {kind(t)}")


def _delpaths_sorted(obj: Any, paths: list[list[Any]], start: int) -> Any:
    delkeys: list[Any] = []
    i = 0
    n = len(paths)
    while i < n:
        delkey = len(paths[i]) == start + 1
        key = paths[i][start]
        j = i + 1
        while j < n and eq(key, paths[j][start]):
            j += 1
        if delkey:
            delkeys.append(key)
        else:
            if type(key) is dict:
                raise Fallback
            sub = index(obj, key)
            if sub is not None:
                obj = set_key(obj, key, _delpaths_sorted(sub, paths[i:j], start + 1), None)
        i = j
    return _dels(obj, delkeys)


def delpaths(obj: Any, paths: Iterable[tuple[Any, ...]]) -> Any:
    ps = sorted((list(p) for p in paths), key=cmp_key)
    if not ps:
        return obj
    if not ps[0]:
        return None
    return _delpaths_sorted(obj, ps, 0)


# ----------------------------------------------------------------------------- builtins


def length(v: Any) -> Any:
    t = type(v)
    if t is str or t is list or t is dict:
        return len(v)
    if t is int or t is float:
        return abs(v)
    if v is None:
        return 0
    raise type_error(v, "has no length")


def utf8bytelength(v: Any) -> int:
    if type(v) is not str:
        raise type_error(v, "only strings have UTF-8 byte length")
    return len(v.encode())


def keys(v: Any) -> list[Any]:
    t = type(v)
    if t is dict:
        return sorted(v)
    if t is list:
        return list(range(len(v)))
    raise type_error(v, "has no keys")


def keys_unsorted(v: Any) -> list[Any]:
    t = type(v)
    if t is dict:
        return list(v)
    if t is list:
        return list(range(len(v)))
    raise type_error(v, "has no keys")


def has(t: Any, k: Any) -> bool:
    tt = type(t)
    tk = type(k)
    if t is None:
        return False
    if tt is dict and tk is str:
        return k in t
    if tt is list and (tk is int or tk is float):
        i = int(to_double(k))
        return 0 <= i < len(t)
    raise JqError(f"Cannot check whether {kind(t)} has a {kind(k)} key")


def _contains(a: Any, b: Any) -> bool:
    ta = type(a)
    if korder(a) != korder(b):
        return False
    if ta is dict:
        for k, bv in b.items():
            if k not in a or not _contains(a[k], bv):
                return False
        return True
    if ta is list:
        return all(any(_contains(x, y) for x in a) for y in b)
    if ta is str:
        return b in a
    return eq(a, b)


def contains(a: Any, b: Any) -> bool:
    if korder(a) != korder(b):
        raise type_error2(a, b, "cannot have their containment checked")
    return _contains(a, b)


def startswith(a: Any, b: Any) -> bool:
    if type(a) is not str or type(b) is not str:
        raise JqError("startswith() requires string inputs")
    return a.startswith(b)


def endswith(a: Any, b: Any) -> bool:
    if type(a) is not str or type(b) is not str:
        raise JqError("endswith() requires string inputs")
    return a.endswith(b)


def ltrimstr(v: Any, x: Any) -> Any:
    if startswith(v, x):
        return v[len(x) :]
    return v


def rtrimstr(v: Any, x: Any) -> Any:
    if endswith(v, x):
        return v[: len(v) - len(x)]
    return v


_WS = frozenset(
    [chr(c) for c in range(0x09, 0x0E)]
    + [" ", "\x85", "\xa0", "\u1680", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000"]
    + [chr(c) for c in range(0x2000, 0x200B)]
)
_WS_STR = "".join(sorted(_WS))


def trim(v: Any, left: bool, right: bool) -> str:
    if type(v) is not str:
        raise JqError("trim input must be a string")
    if left:
        v = v.lstrip(_WS_STR)
    if right:
        v = v.rstrip(_WS_STR)
    return v


def split1(v: Any, sep: Any) -> list[str]:
    if type(v) is not str or type(sep) is not str:
        raise JqError("split input and separator must be strings")
    return split_str(v, sep)


def join(v: Any, sep: Any) -> Any:
    """``def join($x): reduce .[] as $i (null; (if .==null then "" else .+$x end) + (...)) // ""``."""
    acc: Any = None
    for i in each(v):
        acc = "" if acc is None else add(acc, sep)
        ti = type(i)
        if ti is bool or ti is int or ti is float:
            item: Any = dump(i)
        else:
            item = "" if i is None else i
        acc = add(acc, item)
    return "" if acc is None or acc is False else acc


_DOWN = {c: c + 32 for c in range(65, 91)}
_UP = {c: c - 32 for c in range(97, 123)}


def ascii_downcase(v: Any) -> str:
    if type(v) is not str:
        raise JqError("explode input must be a string")
    return v.translate(_DOWN)


def ascii_upcase(v: Any) -> str:
    if type(v) is not str:
        raise JqError("explode input must be a string")
    return v.translate(_UP)


def explode(v: Any) -> list[int]:
    if type(v) is not str:
        raise JqError("explode input must be a string")
    return [ord(c) for c in v]


def implode(v: Any) -> str:
    if type(v) is not list:
        raise JqError("implode input must be an array")
    out = []
    for n in v:
        if type(n) is not int and type(n) is not float:
            raise type_error(n, "can't be imploded, unicode codepoint needs to be numeric")
        d = to_double(n)
        if not -(2.0**31) < d < 2.0**31:
            raise Fallback
        c = int(d)
        if c < 0 or c > 0x10FFFF or 0xD800 <= c <= 0xDFFF:
            c = 0xFFFD
        out.append(chr(c))
    return "".join(out)


def tostring(v: Any) -> str:
    return v if type(v) is str else dump(v)


_INT_RE = re.compile(r"[+-]?[0-9]+\Z")
_NUM_RE = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\Z")


def literal_number(text: str) -> int | float:
    """A number literal (program text, ``tonumber``) as a Python value, if we can represent it
    exactly (same value *and* same printed form); :class:`Fallback` otherwise."""
    if _INT_RE.match(text):
        if len(text) >= 4000:
            raise Fallback
        i = int(text)
        if i == 0 and text.startswith("-"):
            raise Fallback  # literal -0 prints "-0"
        return i
    if not _NUM_RE.match(text):
        raise Fallback
    f = float(text)
    if f != f or f in (_INF, -_INF):
        raise Fallback
    if text != repr(f) and str(Decimal(text)) != str(Decimal(repr(f))):
        raise Fallback
    return f


def tonumber(v: Any) -> Any:
    t = type(v)
    if t is int or t is float:
        return v
    if t is str:
        if v.isdigit() and v.isascii() and len(v) < 4000:
            return int(v)
        try:
            f = float(v)
        except ValueError:
            raise Fallback from None  # let libjq decide (its error message)
        if f - f == 0 and repr(f) == v:
            return f  # canonical text: the literal is exactly this float
        if _NUM_RE.match(v):
            return literal_number(v)
        raise Fallback  # nan, infinities, ...: libjq's rules
    raise type_error(v, "cannot be parsed as a number")


def toboolean(v: Any) -> bool:
    if v is True or v is False:
        return v
    if v == "true":
        return True
    if v == "false":
        return False
    raise type_error(v, "cannot be parsed as a boolean")


_NEG_ZERO_RE = re.compile(r"-0(?![.0-9eE])")


def _has_float(v: Any) -> bool:
    t = type(v)
    if t is float:
        return True
    if t is dict:
        return any(_has_float(x) for x in v.values())
    if t is list:
        return any(_has_float(x) for x in v)
    return False


def fromjson(v: Any) -> Any:
    if type(v) is not str:
        raise type_error(v, "only strings can be parsed")
    try:
        r = orjson.loads(v)
    except (orjson.JSONDecodeError, TypeError):
        raise Fallback from None  # libjq has its own messages (and extensions: nan, ...)
    if _has_float(r) or _NEG_ZERO_RE.search(v):
        raise Fallback  # literal text of numbers would be lost
    return r


def libm(name: str, v: Any) -> Any:
    if type(v) is not int and type(v) is not float:
        raise type_error(v, "number required")
    d = to_double(v)
    if name == "floor":
        r = float(math.floor(d))
    elif name == "ceil":
        r = float(math.ceil(d))
        if r == 0 and d < 0:
            raise Fallback  # ceil(-0.5) is -0
    elif name == "sqrt":
        if d < 0:
            raise Fallback  # nan
        r = math.sqrt(d)
    else:  # fabs
        r = abs(d)
    if d == 0 and math.copysign(1.0, d) < 0 and name != "fabs":
        raise Fallback
    return cnum(r)


def minmax(values: Any, keys_: Any, is_min: bool) -> Any:
    if type(values) is not list or type(keys_) is not list:
        raise type_error2(values, keys_, "cannot be iterated over")
    if len(values) != len(keys_):
        raise type_error2(values, keys_, "have wrong length")
    if not values:
        return None
    ret = values[0]
    retkey = keys_[0]
    for i in range(1, len(values)):
        c = cmp(keys_[i], retkey)
        if (c < 0) == is_min:
            retkey = keys_[i]
            ret = values[i]
    return ret


def sort(v: Any) -> list[Any]:
    if type(v) is not list:
        raise type_error(v, "cannot be sorted, as it is not an array")
    return sorted(v, key=cmp_key)


def _sorted_pairs(values: Any, keys_: Any) -> list[tuple[Any, Any]]:
    if type(values) is not list or type(keys_) is not list or len(values) != len(keys_):
        raise type_error2(values, keys_, "cannot be sorted, as they are not both arrays")
    pairs = list(zip(keys_, values))
    pairs.sort(key=lambda p: cmp_key(p[0]))
    return pairs


def sort_by_keys(values: Any, keys_: Any) -> list[Any]:
    return [v for _, v in _sorted_pairs(values, keys_)]


def group_by_keys(values: Any, keys_: Any) -> list[Any]:
    out: list[list[Any]] = []
    cur: Any = None
    for i, (k, v) in enumerate(_sorted_pairs(values, keys_)):
        if i and eq(cur, k):
            out[-1].append(v)
        else:
            cur = k
            out.append([v])
    return out


def unique_by_keys(values: Any, keys_: Any) -> list[Any]:
    out: list[Any] = []
    cur: Any = None
    for i, (k, v) in enumerate(_sorted_pairs(values, keys_)):
        if i and eq(cur, k):
            continue
        cur = k
        out.append(v)
    return out


def unique(v: Any) -> list[Any]:
    if type(v) is not list:
        raise type_error(v, "cannot be sorted, as it is not an array")
    return unique_by_keys(v, v)


def to_entries(v: Any) -> list[dict[str, Any]]:
    return [{"key": k, "value": index(v, k)} for k in keys_unsorted(v)]


def from_entries(v: Any) -> Any:
    """``map({(.key // .Key // .name // .Name): if has("value") then .value else .Value end})
    | add // {}``."""
    acc: Any = None
    for e in each(v):
        k = index(e, "key")
        if not truthy(k):
            k = index(e, "Key")
            if not truthy(k):
                k = index(e, "name")
                if not truthy(k):
                    k = index(e, "Name")
        val = index(e, "value") if has(e, "value") else index(e, "Value")
        if type(k) is not str:
            raise JqError(f"Cannot use {kind(k)} ({trunc(k)}) as object key")
        acc = add(acc, {k: val})
    return {} if acc is None or acc is False else acc


def flatten(v: Any, depth: Any) -> list[Any]:
    out: list[Any] = []
    for i in each(v):
        if type(i) is list and not eq(depth, 0):
            out.extend(flatten(i, sub(depth, 1)))
        else:
            out.append(i)
    return out


def error_value(v: Any) -> JqError:
    return JqError.from_value(norm(v))


def first_of(it: Iterable[Any]) -> Iterator[Any]:
    for x in it:
        yield x
        return
