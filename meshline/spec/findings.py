"""Findings: problems addressed by their path in a document, before they get a file location.

Every phase after loading works on plain dicts and reports :class:`Finding`\\ s —
``(path, message, severity)`` — so it can be unit-tested without YAML. The loader
turns them into located :class:`~meshline.errors.Problem`\\ s with the document's
:class:`~meshline.spec.yamlload.LocationTable`. A finding's message is prefixed
with its dotted path (``spec.triggers[0].target: …``) when it becomes a problem.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Finding", "Path", "closest", "describe", "format_path", "show", "suggest"]

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Finding:
    """A problem at ``path`` inside one document (``at_key``: point at the key, not its value)."""

    path: Path
    message: str
    severity: str = "error"  # "error" | "warning"
    at_key: bool = False

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def text(self) -> str:
        """The message as a user reads it: ``dotted.path: message``."""
        where = format_path(self.path)
        return f"{where}: {self.message}" if where else self.message


def format_path(path: Iterable[str | int]) -> str:
    """``("spec", "triggers", 0, "target")`` → ``spec.triggers[0].target``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def show(value: Any, limit: int = 60) -> str:
    """A short rendering of a value for a message: strings quoted, containers by kind."""
    if isinstance(value, str):
        text = repr(value)
        return text if len(text) <= limit else text[: limit - 2] + "…" + text[0]
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def describe(value: Any) -> str:
    """What a value is, for 'expected X, found Y' (``a list``, ``the string 'x'``, ``null``)."""
    if isinstance(value, str):
        return f"the string {show(value)}"
    if isinstance(value, bool):
        return show(value)
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if value is None:
        return "nothing (null)"
    if isinstance(value, dict):
        return "an empty mapping" if not value else "a mapping"
    if isinstance(value, list):
        return "an empty list" if not value else "a list"
    return type(value).__name__


def closest(word: Any, candidates: Sequence[str]) -> str | None:
    """The candidate most like ``word`` (difflib), or ``None`` when nothing is close."""
    if not isinstance(word, str) or not candidates:
        return None
    lowered = {c.lower(): c for c in candidates}
    if word.lower() in lowered and lowered[word.lower()] != word:
        return lowered[word.lower()]
    match = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    if match:
        return match[0]
    starting = [c for c in candidates if len(word) >= 3 and c.lower().startswith(word.lower())]
    return starting[0] if len(starting) == 1 else None


def suggest(word: Any, candidates: Sequence[str]) -> str:
    """``"; did you mean 'x'?"`` or ``""``."""
    best = closest(word, candidates)
    return f"; did you mean {best!r}?" if best is not None else ""
