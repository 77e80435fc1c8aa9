"""CloudEvents SQL Expression Language v1 (CESQL) — the ``cesql`` filter dialect.

::

    expr = compile_cesql("type = 'com.example.order' AND source LIKE 'https://%'")
    value, errors = expr.evaluate(event_attributes)   # value: bool | int | str
    passed, errors = expr.matches(event_attributes)    # as a filter

Design
------
``_lexer`` turns the text into tokens, ``_parser`` builds an AST by recursive
descent with precedence climbing, and ``_compiler`` turns the AST into nested
closures once, at compile time: overloads, implicit casts between known types,
LIKE patterns (plain ``str`` methods for exact/prefix/suffix/contains, a regex
otherwise), IN over literals (a frozenset) and function dispatch are all decided
there, and literal-only subexpressions are folded. Evaluation is then a few
Python calls (≈0.6 µs for ``type = 'x' AND source LIKE 'a%'`` on a 2-core CI machine).

Semantics (spec + TCK, see ``SPEC-cesql-v1.md`` and the ``*.yaml`` TCK files)
-------------------------------------------------------------------------------
- Values are ``bool`` (Boolean), ``int`` (32-bit Integer) and ``str`` (String).
  Attribute values are read from the event's attributes in CloudEvents JSON form;
  anything else is represented as String (spec 3.2), ``None`` means absent.
- Keywords, function names and attribute names are case-insensitive (attribute
  names are looked up in lower case: CloudEvents attribute names are lower case).
- Evaluation never raises and never stops: errors are collected in order and
  returned with the value ("complete evaluation" mode, spec 4.1). An operator
  whose operand reported an error (e.g. a missing attribute) yields the zero
  value of its return type; a failed implicit cast yields the zero value of the
  target type and the operator goes on (see ``_operands`` for the details).
- A call to an unknown function, or with an unsupported number of arguments,
  compiles; evaluating it gives ``false`` and a ``missingFunction`` error
  (spec 3.5, TCK ``CONCAT_WS()``); :func:`function_problems` lists such calls
  (``meshline validate`` reports them). Syntax errors raise :class:`CesqlParseError`
  from :func:`compile_cesql`, with the 1-based column.
- Integer arithmetic that leaves the 32-bit range gives a ``math`` error and the
  nearest bound, like ``ABS(-2147483648)`` in the spec; ``x / 0`` and ``x % 0``
  give 0 and a ``math`` error.
- As a filter (:meth:`CesqlExpression.matches`), only a Boolean ``true`` with no
  error passes (spec 1.2).
"""

from __future__ import annotations

from meshline.transforms.cesql._compiler import CesqlExpression, compile_cesql, function_problems
from meshline.transforms.cesql._errors import ERROR_KINDS, CesqlError, CesqlParseError

__all__ = [
    "ERROR_KINDS",
    "CesqlError",
    "CesqlExpression",
    "CesqlParseError",
    "compile_cesql",
    "function_problems",
]
