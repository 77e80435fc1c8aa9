"""The CESQL error type: one class carrying the TCK error kind, plus the parse error."""

from __future__ import annotations

from meshline.errors import MeshlineError

__all__ = [
    "CAST",
    "ERROR_KINDS",
    "FUNCTION_EVALUATION",
    "GENERIC",
    "MATH",
    "MISSING_ATTRIBUTE",
    "MISSING_FUNCTION",
    "PARSE",
    "CesqlError",
    "CesqlParseError",
]

PARSE = "parse"
MATH = "math"
CAST = "cast"
MISSING_FUNCTION = "missingFunction"
FUNCTION_EVALUATION = "functionEvaluation"
MISSING_ATTRIBUTE = "missingAttribute"
GENERIC = "generic"

ERROR_KINDS = frozenset(
    {PARSE, MATH, CAST, MISSING_FUNCTION, FUNCTION_EVALUATION, MISSING_ATTRIBUTE, GENERIC}
)


class CesqlError(MeshlineError):
    """An error of a CESQL expression.

    ``kind`` is one of the spec's error types, spelled as in the TCK (``"parse"``,
    ``"math"``, ``"cast"``, ``"missingFunction"``, ``"functionEvaluation"``,
    ``"missingAttribute"``, ``"generic"``); ``column`` is the 1-based column of the
    part of the expression that raised it (0 when it concerns the whole expression).
    Evaluation errors are returned, never raised.
    """

    def __init__(self, kind: str, message: str, column: int = 0):
        self.kind = kind
        self.message = message
        self.column = column
        super().__init__(self._describe())

    def _describe(self) -> str:
        return f"{self.message} (column {self.column})" if self.column else self.message

    def __reduce__(self) -> tuple[object, ...]:
        return (CesqlError, (self.kind, self.message, self.column))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.kind!r}, {self.message!r}, column={self.column})"


class CesqlParseError(CesqlError):
    """The expression text is not valid CESQL; raised by :func:`compile_cesql`."""

    def __init__(self, message: str, column: int):
        super().__init__(PARSE, message, column)

    def _describe(self) -> str:
        return f"invalid CESQL expression at column {self.column}: {self.message}"

    def __reduce__(self) -> tuple[object, ...]:
        return (CesqlParseError, (self.message, self.column))
