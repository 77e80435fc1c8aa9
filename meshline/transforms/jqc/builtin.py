"""jq's builtin functions written natively (``length``, ``keys``, ``split``, ``sort_by``, ...)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from meshline.transforms.jqc.arith import add, split_str, sub
from meshline.transforms.jqc.compare import cmp, cmp_key, dump, eq, trunc, type_error, type_error2
from meshline.transforms.jqc.errors import Fallback, JqError
from meshline.transforms.jqc.numbers import cnum, kind, korder, literal_number, norm, to_double, truthy
from meshline.transforms.jqc.paths import each, index

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
        return literal_number(v)  # raises Fallback for nan, infinities, ...: libjq's rules
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
