"""Session fixtures of the AWS connector tests: one moto server, fake credentials in this process."""

from __future__ import annotations

import os

import pytest

from tests.servers.moto import aws_env, moto_server


@pytest.fixture(scope="session")
def moto_endpoint():
    """The moto server's URL; AWS_* variables point boto3 (here and in child processes) at fakes."""
    with moto_server() as url:
        saved = {k: os.environ.get(k) for k in aws_env(url)}
        os.environ.update(aws_env(url))
        try:
            yield url
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


@pytest.fixture
def aws(moto_endpoint):
    from tests.integration.aws.support import Aws

    return Aws(moto_endpoint)
