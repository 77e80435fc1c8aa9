"""Admin helpers for the Pub/Sub emulator: topics, subscriptions, publishing, draining."""

from __future__ import annotations

import uuid

import grpc
from google.cloud import pubsub_v1
from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport
from google.pubsub_v1.services.subscriber.transports import SubscriberGrpcTransport

PROJECT = "meshline-test"


class PubSub:
    def __init__(self, host: str):
        self.host = host
        self.publisher = pubsub_v1.PublisherClient(
            transport=PublisherGrpcTransport(channel=grpc.insecure_channel(host))
        )
        self.subscriber = pubsub_v1.SubscriberClient(
            transport=SubscriberGrpcTransport(channel=grpc.insecure_channel(host))
        )

    def new_subscription(self, ack_deadline: int = 10) -> tuple[str, str]:
        """A fresh topic and subscription; returns (topic path, subscription id)."""
        name = uuid.uuid4().hex[:12]
        topic = self.publisher.topic_path(PROJECT, f"t-{name}")
        self.publisher.create_topic(request={"name": topic})
        sub = self.subscriber.subscription_path(PROJECT, f"s-{name}")
        self.subscriber.create_subscription(
            request={"name": sub, "topic": topic, "ack_deadline_seconds": ack_deadline}
        )
        return topic, f"s-{name}"

    def publish(self, topic: str, messages: list[tuple[bytes, dict[str, str]]]) -> list[str]:
        futures = [self.publisher.publish(topic, data, **attrs) for data, attrs in messages]
        return [f.result(timeout=30) for f in futures]

    def drain(self, subscription: str, wait: float = 2.0) -> list[str]:
        """Message ids still deliverable on the subscription (acknowledging them).

        "Nothing left" is an empty pull (what the emulator answers) or a pull that ran out
        of time (``DeadlineExceeded``, what the service may answer); any other failure is
        raised, so an acknowledgement check cannot pass because pulling failed.
        """
        from google.api_core.exceptions import DeadlineExceeded

        path = self.subscriber.subscription_path(PROJECT, subscription)
        ids: list[str] = []
        while True:
            try:
                resp = self.subscriber.pull(request={"subscription": path, "max_messages": 500}, timeout=wait)
            except DeadlineExceeded:
                break
            if not resp.received_messages:
                break
            ids += [r.message.message_id for r in resp.received_messages]
            self.subscriber.acknowledge(
                request={"subscription": path, "ack_ids": [r.ack_id for r in resp.received_messages]}
            )
        return ids
