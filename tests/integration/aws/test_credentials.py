"""Credentials the boto3 way, or named in the config, or a role assumed through STS (moto)."""

from __future__ import annotations

import pytest

from meshline.connectors.aws.common import AwsConnection, client

pytestmark = pytest.mark.integration


def _key(sqs) -> str:
    return sqs._request_signer._credentials.get_frozen_credentials().access_key


def test_default_chain_named_keys_and_an_assumed_role(moto_endpoint):
    base = {"endpoint_url": moto_endpoint, "region": "us-east-1"}
    assert _key(client(AwsConnection(**base), "sqs")) == "testing"  # AWS_ACCESS_KEY_ID of this process
    named = AwsConnection(**base, access_key_id="AKIANAMEDINCONFIG", secret_access_key="not-a-real-secret")
    assert _key(client(named, "sqs")) == "AKIANAMEDINCONFIG"
    role = AwsConnection(**base, role_arn="arn:aws:iam::123456789012:role/meshline-reader")
    sqs = client(role, "sqs")
    sqs.create_queue(QueueName="role-check")  # the assumed credentials work
    assert _key(sqs).startswith("ASIA")  # temporary credentials from STS AssumeRole
