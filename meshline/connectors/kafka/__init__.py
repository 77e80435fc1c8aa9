"""Kafka connectors: the ``kafka`` source (one restriction per partition) and target.

The read core (:mod:`meshline.connectors.kafka.read`) is shared with the Azure
Event Hubs and Activity Logs sources, which read Event Hubs' Kafka endpoint.
The transforms (Apache Beam) are imported on first use (PEP 562): the configs
are light.
"""

from __future__ import annotations

from typing import Any

from meshline.connectors.kafka.config import KafkaConnection, KafkaSourceConfig, KafkaTargetConfig

__all__ = ["KafkaConnection", "KafkaSourceConfig", "KafkaTargetConfig", "ReadFromKafka", "WriteToKafka"]


def __getattr__(name: str) -> Any:
    if name == "ReadFromKafka":
        from meshline.connectors.kafka.source import ReadFromKafka

        return ReadFromKafka
    if name == "WriteToKafka":
        from meshline.connectors.kafka.target import WriteToKafka

        return WriteToKafka
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
