"""``log`` target: config and declaration (the Beam transform: :mod:`meshline.connectors.log`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from meshline.config import doc
from meshline.connectors.late import Late
from meshline.registry import Component

__all__ = ["TARGET", "LogConfig"]


@dataclass(frozen=True, kw_only=True)
class LogConfig:
    """Print events, one JSON line each, for demos and debugging."""

    format: Literal["json", "pretty"] = doc("'json': one line per event; 'pretty': indented", "json")
    prefix: str = doc("text printed before each event", "")


TARGET = Component(
    id="log",
    kind="target",
    config=LogConfig,
    build=Late("meshline.connectors.log:build"),
    description="Print events as JSON lines on standard output.",
)
