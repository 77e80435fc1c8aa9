"""Meshline's exception tree.

::

    MeshlineError                 base of everything Meshline raises on purpose
    ├── SpecError                 the integration file is wrong (one or more located problems)
    ├── ConfigError               a connector or transformation config is wrong (its ``problems``:
    │                             one :class:`ConfigProblem` each, with the key path and kind)
    ├── EventError                bytes or a dict are not a valid CloudEvent
    ├── FilterError               a filter failed at run time (stage ``filter``)
    ├── TransformError            a transformation failed at run time (stage ``transform``)
    ├── DeliveryError             a target could not deliver (stage ``deliver``)
    │   └── PermanentDeliveryError   … and retrying will not help
    └── RunnerError               a runner could not be provisioned or started

A user mistake surfaces as one of these, and the CLI prints ``str(error)`` (one
line per problem) and exits with status 1 or 2; never a traceback.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "ConfigError",
    "ConfigProblem",
    "DeliveryError",
    "EventError",
    "FilterError",
    "Location",
    "MeshlineError",
    "PermanentDeliveryError",
    "Problem",
    "RunnerError",
    "SpecError",
    "TransformError",
]


class MeshlineError(Exception):
    """Base class of every error Meshline raises on purpose."""


@dataclass(frozen=True)
class Location:
    """A place in an integration file (1-based line and column)."""

    file: str
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        if self.line:
            return f"{self.file}:{self.line}:{self.col or 1}"
        return self.file


@dataclass(frozen=True)
class Problem:
    """One located problem in an integration file."""

    location: Location
    message: str
    severity: str = "error"  # "error" | "warning"

    def __str__(self) -> str:
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{self.location}: {prefix}{self.message}"


class SpecError(MeshlineError):
    """The integration file is invalid; carries every problem found at once."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


ConfigProblemKind = Literal["unknown-key", "missing-key", "invalid", "rule"]


@dataclass(frozen=True)
class ConfigProblem:
    """One problem of a component's config, at ``path`` (keys and list indexes; ``()``: the config).

    ``kind``: ``unknown-key`` (``choices`` holds the keys the config takes),
    ``missing-key`` (a required key), ``invalid`` (a value of the wrong type or out
    of its choices) or ``rule`` (a cross-field rule of the config's ``__post_init__``).
    """

    path: tuple[str | int, ...]
    kind: ConfigProblemKind
    message: str
    choices: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """The dotted key: ``auth.user``, ``hosts[0]``; ``""`` for the config itself."""
        out = ""
        for part in self.path:
            out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
        return out

    def __str__(self) -> str:
        return f"{self.key or 'config'}: {self.message}"


class ConfigError(MeshlineError):
    """A connector or transformation configuration is invalid.

    ``problems`` lists each problem with its key path and kind (empty when the error
    was raised with a message only, e.g. by a config's own rule); ``str()`` is one
    line per problem.
    """

    def __init__(self, message: str | Sequence[ConfigProblem] = ""):
        if isinstance(message, str):
            self.problems: tuple[ConfigProblem, ...] = ()
            text = message
        else:
            self.problems = tuple(message)
            text = "\n".join(str(p) for p in self.problems)
        super().__init__(text)


class EventError(MeshlineError):
    """Input is not a valid CloudEvent."""


class FilterError(MeshlineError):
    """A filter raised while evaluating an event."""


class TransformError(MeshlineError):
    """A transformation raised while processing an event."""


class DeliveryError(MeshlineError):
    """A target failed to deliver an event (transient unless subclassed)."""


class PermanentDeliveryError(DeliveryError):
    """A target rejected an event; retrying will not help."""


class RunnerError(MeshlineError):
    """A runner could not be provisioned or started."""


class UsageError(Exception):
    """A mistake on the command line (an option's value, a name that is not in the file): the
    command prints one line and ends with status 2."""
