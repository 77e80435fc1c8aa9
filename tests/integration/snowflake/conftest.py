"""A fakesnow server for the snowflake target tests, once per session."""

from __future__ import annotations

import pytest

from tests.servers.fakesnow import fakesnow_server


@pytest.fixture(scope="session")
def fakesnow_url():
    with fakesnow_server() as url:
        yield url
