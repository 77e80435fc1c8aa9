"""Meshline's exception tree.

::

    MeshlineError                 base of everything Meshline raises on purpose
    ├── SpecError                 the integration file is wrong (one or more located problems)
    ├── ConfigError               a connector or transformation config is wrong
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

from dataclasses import dataclass

__all__ = [
    "ConfigError",
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


class ConfigError(MeshlineError):
    """A connector or transformation configuration is invalid."""


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
