"""A RabbitMQ broker (tests/servers/rabbitmq.py) for the amqp tests, once per session."""

from __future__ import annotations

import pytest

from tests.servers.rabbitmq import rabbitmq_server


@pytest.fixture(scope="session")
def rabbitmq():
    with rabbitmq_server() as broker:
        yield broker


@pytest.fixture(scope="session")
def kafka_for_amqp():
    """The Kafka broker of tests/servers/kafka.py, for the AMQP → Kafka pipeline."""
    from tests.servers.kafka import kafka_broker

    with kafka_broker() as broker:
        yield broker
