"""``log`` target: config and declaration (the Beam transform: :mod:`meshline.connectors.log`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from meshline.config import doc
from meshline.registry import BuildContext, Component

__all__ = ["TARGET", "LogConfig"]


@dataclass(frozen=True, kw_only=True)
class LogConfig:
    """Print events, one JSON line each, for demos and debugging."""

    format: Literal["json", "pretty"] = doc("'json': one line per event; 'pretty': indented", "json")
    prefix: str = doc("text printed before each event", "")


def _build(config: LogConfig, ctx: BuildContext) -> Any:
    from meshline.connectors.log import WriteToLog

    return WriteToLog(config, ctx.name)


TARGET = Component(
    id="log",
    kind="target",
    config=LogConfig,
    build=_build,
    description="Print events as JSON lines on standard output.",
)
