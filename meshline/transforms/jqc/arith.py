"""jq's arithmetic operators (``+ - * / %``, unary ``-``) on Python JSON values."""

from __future__ import annotations

from typing import Any

from meshline.transforms.jqc.compare import eq, fast_num_pair, type_error, type_error2
from meshline.transforms.jqc.errors import Fallback, JqError
from meshline.transforms.jqc.numbers import INT_MAX, M, cnum, to_double

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
    if fast_num_pair(a, b):
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
    if fast_num_pair(a, b):
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
