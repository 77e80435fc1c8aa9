"""Exceptions shared by the jq engine (public ones are re-exported by :mod:`meshline.transforms.jq`)."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["Fallback", "JqCompileError", "JqError", "JqTimeout", "Unsupported"]

_NO_VALUE: Any = object()


class JqError(Exception):
    """A jq runtime error; ``str(e)`` is jq's message (as jq.py reports it).

    ``value`` is the jq error value (what ``error(v)`` raised; the message string for
    built-in errors). A non-string value is rendered the way jq.py renders it: ``json.dumps``.
    """

    def __init__(self, message: str, value: Any = _NO_VALUE) -> None:
        super().__init__(message)
        self.message = message
        self.value = message if value is _NO_VALUE else value

    @classmethod
    def from_value(cls, value: Any) -> JqError:
        """The error raised by jq's ``error`` builtin with ``value`` (a normalised JSON value)."""
        if isinstance(value, str):
            return cls(value, value)
        return cls(json.dumps(value), value)


class JqCompileError(JqError):
    """The program does not compile (syntax error, unknown function, ...); jq's own message."""


class JqTimeout(Exception):
    """The program ran past its deadline (see :func:`meshline.transforms.jqc.clock.deadline`).

    Not a :class:`JqError`: jq's ``try`` and ``?`` do not catch it, and no fallback re-runs it.
    """


class Fallback(Exception):
    """Raised by the native evaluator when it cannot reproduce jq exactly for this input.

    The whole program is then re-run by jq.py on the same (unmodified) input.
    """


class Unsupported(Exception):
    """Raised by the native parser/compiler for programs outside the native subset."""
