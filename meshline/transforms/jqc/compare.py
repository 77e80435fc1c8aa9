"""jq's equality and total order (``jv_equal``, ``jv_cmp``), JSON text as jq writes it, type errors."""

from __future__ import annotations

import re
import threading
from functools import cmp_to_key
from typing import Any

from meshline.transforms.jqc.errors import Fallback, JqError
from meshline.transforms.jqc.numbers import M, fmt_num, kind, korder, numcmp

# ----------------------------------------------------------------------------- array views

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


def array_slice(t: list[Any], s: int, e: int) -> list[Any]:
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
            return True  # libjq's identity shortcut (see array_slice)
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


def fast_num_pair(a: Any, b: Any) -> bool:
    """Two numbers that Python compares as :func:`numcmp` does (floats, ints within 2**53)."""
    ta = type(a)
    tb = type(b)
    if ta is float:
        return tb is float or (tb is int and -M <= b <= M)
    if ta is int and -M <= a <= M:
        return tb is float or (tb is int and -M <= b <= M)
    return False


def op_lt(a: Any, b: Any) -> bool:
    if fast_num_pair(a, b) or (type(a) is str and type(b) is str):
        return a < b
    return cmp(a, b) < 0


def op_le(a: Any, b: Any) -> bool:
    if fast_num_pair(a, b) or (type(a) is str and type(b) is str):
        return a <= b
    return cmp(a, b) <= 0


def op_gt(a: Any, b: Any) -> bool:
    if fast_num_pair(a, b) or (type(a) is str and type(b) is str):
        return a > b
    return cmp(a, b) > 0


def op_ge(a: Any, b: Any) -> bool:
    if fast_num_pair(a, b) or (type(a) is str and type(b) is str):
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
