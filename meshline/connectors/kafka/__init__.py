"""Kafka connectors: the ``kafka`` source (one restriction per partition) and target.

The read core (:mod:`meshline.connectors.kafka.read`) is shared with the Azure
Event Hubs and Activity Logs sources, which read Event Hubs' Kafka endpoint.
"""

from meshline.connectors.kafka.config import KafkaConnection, KafkaSourceConfig, KafkaTargetConfig
from meshline.connectors.kafka.source import ReadFromKafka
from meshline.connectors.kafka.target import WriteToKafka

__all__ = ["KafkaConnection", "KafkaSourceConfig", "KafkaTargetConfig", "ReadFromKafka", "WriteToKafka"]
