"""Session fixtures: fake-gcs-server publishing to the Pub/Sub emulator, and azurite."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest

from tests.integration.pubsub_support import PROJECT, PubSub
from tests.servers.azurite import azurite, connection_string
from tests.servers.gcs import fake_gcs_server

GCS_TOPIC = "gcs-notifications"


@dataclass
class Gcs:
    url: str  # the JSON API endpoint (http://127.0.0.1:PORT)
    pubsub_host: str
    pubsub: PubSub
    client: object

    def new_bucket(self) -> str:
        name = f"b-{uuid.uuid4().hex[:12]}"
        self.client.create_bucket(name)  # type: ignore[attr-defined]
        return name

    def new_subscription(self, ack_deadline: int = 10) -> str:
        """A subscription on the notification topic (sees events from now on)."""
        sub = f"gcs-{uuid.uuid4().hex[:12]}"
        path = self.pubsub.subscriber.subscription_path(PROJECT, sub)
        topic = self.pubsub.publisher.topic_path(PROJECT, GCS_TOPIC)
        self.pubsub.subscriber.create_subscription(
            request={"name": path, "topic": topic, "ack_deadline_seconds": ack_deadline}
        )
        return sub


@pytest.fixture(scope="session")
def gcs(pubsub_host):
    from meshline.connectors.gcs.client import storage_client

    ps = PubSub(pubsub_host)
    ps.publisher.create_topic(request={"name": ps.publisher.topic_path(PROJECT, GCS_TOPIC)})
    with fake_gcs_server(pubsub_host=pubsub_host, project=PROJECT, topic=GCS_TOPIC) as url:
        yield Gcs(url, pubsub_host, ps, storage_client(PROJECT, url))


@dataclass
class Azurite:
    url: str  # the Blob endpoint, http://127.0.0.1:PORT/devstoreaccount1
    connection_string: str
    client: object

    def new_container(self) -> str:
        name = f"c-{uuid.uuid4().hex[:12]}"
        self.client.create_container(name)  # type: ignore[attr-defined]
        return name

    def blobs(self, container: str) -> dict[str, bytes]:
        c = self.client.get_container_client(container)  # type: ignore[attr-defined]
        # without the ledger of a target (.meshline/, as data readers skip it)
        return {
            b.name: c.download_blob(b.name).readall() for b in c.list_blobs() if ".meshline/" not in b.name
        }


@pytest.fixture(scope="session")
def blob_storage():
    from azure.storage.blob import BlobServiceClient

    with azurite() as url:
        cs = connection_string(url)
        yield Azurite(url, cs, BlobServiceClient.from_connection_string(cs))
