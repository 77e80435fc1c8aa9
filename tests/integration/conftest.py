"""Fixtures that start real servers (tests/servers/) once per session."""

from __future__ import annotations

import pytest

from tests.servers.pubsub import pubsub_emulator


@pytest.fixture(scope="session")
def pubsub_host():
    with pubsub_emulator() as host:
        yield host
