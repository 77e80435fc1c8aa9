"""azure.activitylogs decoding and Event Hubs login settings, without a broker."""

from __future__ import annotations

import orjson
import pytest

from meshline.config import parse_config
from meshline.connectors.azure.activitylogs import (
    ACTIVITY_LOG_TYPE,
    ActivityLogDecoder,
    ActivityLogsSourceConfig,
)
from meshline.connectors.azure.eventhubs import EventHubsSourceConfig
from meshline.errors import ConfigError
from meshline.registry import lookup

CONN = "Endpoint=sb://ns1.servicebus.windows.net/;SharedAccessKeyName=listen;SharedAccessKey=dGVzdA=="


def _record(**over):
    r = {
        "time": "2024-05-02T10:21:07.7810000Z",
        "resourceId": "/SUBSCRIPTIONS/S1/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.COMPUTE/VIRTUALMACHINES/VM1",
        "operationName": "MICROSOFT.COMPUTE/VIRTUALMACHINES/DELETE",
        "category": "Administrative",
        "resultType": "Failure",
        "resultSignature": "Forbidden.403",
        "durationMs": "12",
        "callerIpAddress": "203.0.113.7",
        "correlationId": "c0ffee00-0000-0000-0000-000000000001",
        "eventDataId": "e0000000-0000-0000-0000-000000000002",
        "identity": {"claims": {"name": "someone"}},
        "level": "Error",
        "location": "global",
        "properties": {"statusCode": "Forbidden"},
    }
    r.update(over)
    return r


def test_one_event_per_record_with_spec_attributes():
    body = orjson.dumps(
        {"records": [_record(), _record(correlationId="c2", eventDataId="e2", category="Policy")]}
    )
    out = ActivityLogDecoder("sb://ns1.servicebus.windows.net/insights-activity-logs").decode(
        "hub", 0, 7, body
    )
    assert [p for _, p in out] == [None, None]
    first = out[0][0]
    assert first.attributes == {
        "specversion": "1.0",
        "id": "c0ffee00-0000-0000-0000-000000000001-e0000000-0000-0000-0000-000000000002",
        "source": _record()["resourceId"],
        "type": ACTIVITY_LOG_TYPE,
        "time": "2024-05-02T10:21:07.7810000Z",
        "subject": "MICROSOFT.COMPUTE/VIRTUALMACHINES/DELETE",
        "category": "Administrative",
        "resulttype": "Failure",
        "level": "Error",
        "datacontenttype": "application/json",
    }
    assert first.data == _record()  # the record, unchanged
    assert out[1][0].id == "c2-e2" and out[1][0].get("category") == "Policy"


def test_operation_id_when_no_event_data_id():
    rec = _record(operationId="op-9")
    del rec["eventDataId"]
    ((event, _problem),) = ActivityLogDecoder("x").decode("hub", 0, 1, orjson.dumps({"records": [rec]}))
    assert event.id == "c0ffee00-0000-0000-0000-000000000001-op-9"


def test_categories_filter_is_case_insensitive():
    body = orjson.dumps({"records": [_record(category="Security"), _record(), _record(category="Autoscale")]})
    out = ActivityLogDecoder("x", ["administrative", "SECURITY"]).decode("hub", 0, 1, body)
    assert [e.get("category") for e, _ in out] == ["Security", "Administrative"]


@pytest.mark.parametrize(
    ("body", "reason"),
    [(b"not json", "not JSON"), (b'{"value": []}', '{"records": [...]}'), (b"[1, 2]", '{"records": [...]}')],
)
def test_malformed_message_is_one_dead_letter_with_the_raw_body(body, reason):
    ((event, problem),) = ActivityLogDecoder("sb://ns/hub").decode("hub", 1, 5, body)
    assert reason in problem
    assert event.data == body and event.id == "hub-1-5" and event.source == "sb://ns/hub"


def test_record_without_resource_id_or_time_is_dead_lettered_alone():
    bad = _record()
    del bad["resourceId"]
    out = ActivityLogDecoder("x").decode("hub", 0, 1, orjson.dumps({"records": [bad, _record(), "oops"]}))
    assert [p is None for _, p in out] == [False, True, False]
    assert "resourceId" in out[0][1] and "not a JSON object" in out[2][1]


def test_eventhubs_login_from_connection_string():
    c = parse_config(EventHubsSourceConfig, {"connection_string": CONN + ";EntityPath=hub1"})
    assert c.hub == "hub1" and c.host == "ns1.servicebus.windows.net"
    props = c.kafka_properties()
    assert props["bootstrap.servers"] == "ns1.servicebus.windows.net:9093"
    assert (props["security.protocol"], props["sasl.mechanism"]) == ("SASL_SSL", "PLAIN")
    assert (
        props["sasl.username"] == "$ConnectionString" and props["sasl.password"] == CONN + ";EntityPath=hub1"
    )
    assert props["group.id"] == "$Default"


def test_eventhubs_login_from_namespace_and_key_with_local_endpoint():
    c = parse_config(
        EventHubsSourceConfig,
        {
            "namespace": "ns2",
            "key_name": "reader",
            "key": "a2V5",
            "event_hub": "hub",
            "endpoint_url": "127.0.0.1:9094",
            "security_protocol": "SASL_PLAINTEXT",
            "consumer_group": "cg",
        },
    )
    props = c.kafka_properties()
    assert props["bootstrap.servers"] == "127.0.0.1:9094" and props["security.protocol"] == "SASL_PLAINTEXT"
    assert props["sasl.password"] == (
        "Endpoint=sb://ns2.servicebus.windows.net/;SharedAccessKeyName=reader;SharedAccessKey=a2V5"
    )
    assert props["group.id"] == "cg"


@pytest.mark.parametrize(
    ("cls", "config", "message"),
    [
        (EventHubsSourceConfig, {"event_hub": "h"}, "connection_string, or namespace"),
        (EventHubsSourceConfig, {"connection_string": CONN}, "event_hub"),
        (EventHubsSourceConfig, {"connection_string": "garbage", "event_hub": "h"}, "connection_string"),
        (ActivityLogsSourceConfig, {"connection_string": CONN, "categories": ["Nope"]}, "categories"),
    ],
)
def test_config_errors(cls, config, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(cls, config)


def test_activitylogs_defaults_and_secrets():
    c = parse_config(ActivityLogsSourceConfig, {"connection_string": CONN})
    assert c.event_hub == "insights-activity-logs" and c.categories == []
    for id_ in ("azure.eventhubs", "azure.activitylogs"):
        component = lookup("source", id_)
        assert component is not None and set(component.secret_marks) == {"connection_string", "key"}
        assert component.unbounded
