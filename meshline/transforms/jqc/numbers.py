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

import math
import re
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Any

from meshline.transforms.jqc.errors import Fallback

M = 2**53
MF = float(M)
INT_MAX = 2**31 - 1
INT_MIN = -(2**31)
DBL_MAX = 1.7976931348623157e308
_INF = math.inf

_CTX17 = Context(prec=17, rounding=ROUND_HALF_EVEN, Emax=384, Emin=-383, traps=[])

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


# ----------------------------------------------------------------------------- literals

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
