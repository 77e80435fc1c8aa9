"""Indexing, iteration, recursion and copy-on-write paths (``jv_get``, ``jv_set``, ``delpaths``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from meshline.transforms.jqc.clock import tick
from meshline.transforms.jqc.compare import array_slice, cmp_key, eq, trunc
from meshline.transforms.jqc.errors import Fallback, JqError
from meshline.transforms.jqc.numbers import INT_MAX, INT_MIN, kind, to_double

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
            return array_slice(t, s, e)
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
