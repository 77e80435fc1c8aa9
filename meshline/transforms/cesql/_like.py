"""LIKE patterns -> a test ``(value, argument) -> bool``: plain str methods for the common shapes.

``%`` is any run of characters, ``_`` exactly one; ``\\%`` and ``\\_`` match the
character itself, and a backslash before anything else stays a literal
backslash together with that character (so a pattern without wildcards matches
exactly the string it spells). Exact, prefix (``abc%``), suffix (``%abc``) and
contains (``%abc%``) patterns use ``str`` methods; others a compiled regex.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from typing import Any

__all__ = ["like_test"]

_MANY = object()  # "%" in a LIKE pattern
_ONE = object()  # "_" in a LIKE pattern


def _like_parts(pattern: str) -> list[object]:
    """Pattern -> literal runs (str), ``_MANY`` for ``%`` (runs of it collapsed) and ``_ONE`` for ``_``."""
    parts: list[object] = []
    i = 0
    while i < len(pattern):
        char, i = pattern[i], i + 1
        if char == "\\" and i < len(pattern):
            part: object = pattern[i] if pattern[i] in "%_" else char + pattern[i]
            i += 1
        else:
            part = _MANY if char == "%" else _ONE if char == "_" else char
        if part is _MANY and parts and parts[-1] is _MANY:
            continue
        if isinstance(part, str) and parts and isinstance(parts[-1], str):
            parts[-1] += part
        else:
            parts.append(part)
    return parts


def like_test(pattern: str) -> tuple[Callable[[str, Any], bool], Any]:
    """A test ``(value, argument) -> bool`` and its argument; plain str methods for the common shapes."""
    parts = _like_parts(pattern)
    shape = tuple(part if part is _MANY or part is _ONE else str for part in parts)
    literals = [part for part in parts if isinstance(part, str)]
    if shape in ((), (str,)):
        return str.__eq__, "".join(literals)
    if shape == (_MANY,):
        return (lambda value, _: True), None
    if shape == (str, _MANY):
        return str.startswith, literals[0]
    if shape == (_MANY, str):
        return str.endswith, literals[0]
    if shape == (_MANY, str, _MANY):
        return operator.contains, literals[0]
    regex = "".join(".*" if p is _MANY else "." if p is _ONE else re.escape(str(p)) for p in parts)
    return (lambda value, fullmatch: fullmatch(value) is not None), re.compile(regex, re.DOTALL).fullmatch
