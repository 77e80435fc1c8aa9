"""Search nodes for the elasticsearch target tests, each started once per session.

``opensearch_url``: OpenSearch 2.19; ``elasticsearch_url``: Elasticsearch 8.15 (no
x-pack); ``search_url``: parametrized over both, for tests that must pass on each.
"""

from __future__ import annotations

import pytest

from tests.servers.elasticsearch import elasticsearch_node
from tests.servers.opensearch import opensearch_node


@pytest.fixture(scope="session")
def opensearch_url():
    with opensearch_node() as url:
        yield url


@pytest.fixture(scope="session")
def elasticsearch_url():
    with elasticsearch_node() as url:
        yield url


@pytest.fixture(
    params=[
        pytest.param(name, marks=pytest.mark.servers(f"{name}_url"))
        for name in ("opensearch", "elasticsearch")
    ]
)
def search_url(request):
    return request.getfixturevalue(f"{request.param}_url")
