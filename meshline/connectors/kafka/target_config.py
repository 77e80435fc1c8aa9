"""``kafka`` target: its declaration.

The config is :class:`~meshline.connectors.kafka.config.KafkaTargetConfig`; the Beam
transform, imported when a pipeline is built, is :mod:`meshline.connectors.kafka.target`.
"""

from __future__ import annotations

from typing import Any

from meshline.connectors.kafka.config import KafkaTargetConfig
from meshline.registry import BuildContext, Component

__all__ = ["TARGET"]


def _build(config: Any, ctx: BuildContext) -> Any:
    from meshline.connectors.kafka.target import build

    return build(config, ctx)


TARGET = Component(
    id="kafka",
    kind="target",
    config=KafkaTargetConfig,
    build=_build,
    description=(
        "A Kafka topic, CloudEvents Kafka binding (binary or structured), idempotent producer; "
        "flushed and checked before each bundle commits."
    ),
    batches=True,
)
