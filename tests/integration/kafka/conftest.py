"""One real Kafka broker (KRaft, from Maven Central jars) per test session."""

from __future__ import annotations

import pytest

from tests.servers.kafka import KafkaBroker, kafka_broker


@pytest.fixture(scope="session")
def kafka() -> KafkaBroker:
    with kafka_broker() as broker:
        yield broker
