"""``generate`` source: config and declaration (the Beam transform: :mod:`meshline.connectors.generate`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from meshline.config import doc
from meshline.connectors.late import Late
from meshline.registry import Component

__all__ = ["SOURCE", "GenerateConfig", "is_unbounded"]


@dataclass(frozen=True, kw_only=True)
class GenerateConfig:
    """Generate events from a template, for demos and load tests."""

    count: int | None = doc("number of events to generate (bounded)", None)
    rate: float | None = doc("events per second (paced in real time); without count: unbounded", None)
    event: dict[str, Any] = doc("CloudEvent template; '{n}' in any string is the sequence number", {})
    max_events: int | None = doc("stop after this many events (same as count for this source)", None)

    def __post_init__(self) -> None:
        if self.count is None and self.rate is None and self.max_events is None:
            raise ValueError("one of 'count', 'rate' or 'max_events' is required")
        if self.count is not None and self.count < 0:
            raise ValueError(f"count: must be >= 0, got {self.count}")
        if self.rate is not None and self.rate <= 0:
            raise ValueError(f"rate: must be > 0, got {self.rate}")


def is_unbounded(config: Mapping[str, Any]) -> bool:
    """``rate`` without ``count``: events keep coming (``max_events`` only ends the run early)."""
    return config.get("count") is None and config.get("rate") is not None


SOURCE = Component(
    id="generate",
    kind="source",
    config=GenerateConfig,
    build=Late("meshline.connectors.generate:build"),
    description="Generated events: a count, or a rate per second, from a CloudEvent template.",
    unbounded=is_unbounded,
    redelivers=False,
)
