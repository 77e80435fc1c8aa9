"""elasticsearch target: pure parts (ids, bulk bodies, reply classification, config checks)."""

from __future__ import annotations

import orjson
import pytest

from meshline.connectors.delivery import PermanentError, TransientError
from meshline.connectors.elasticsearch import (
    ElasticsearchConfig,
    _action_encoder,
    _document_encoder,
    _index_renderer,
    _raise_for_status,
    document_id,
    parse_bulk_reply,
)
from meshline.events import CloudEvent


def _ev(i: int = 1, **kw) -> CloudEvent:
    return CloudEvent.create(
        id=f"e-{i}", source="/s", type="com.example.x", data=kw.pop("data", {"n": i}), **kw
    )


def _cfg(**kw) -> ElasticsearchConfig:
    return ElasticsearchConfig(hosts=["http://127.0.0.1:9200"], index=kw.pop("index", "orders"), **kw)


def test_document_id_is_stable_and_separates_source_from_id():
    a = document_id(_ev(1))
    assert a == document_id(_ev(1)) and len(a) == 40
    assert a != document_id(_ev(2))
    x = CloudEvent.create(id="b", source="a", type="t")
    y = CloudEvent.create(id="", source="ab", type="t")  # same concatenation without the NUL
    assert document_id(x) != document_id(y)


def test_action_line_is_valid_json_with_index_and_id():
    line = _action_encoder(_cfg(op_type="create"))(_ev(3), "orders-2026")
    assert orjson.loads(line) == {"create": {"_index": "orders-2026", "_id": document_id(_ev(3))}}
    assert line.endswith(b"\n")


def test_documents_are_the_data_or_the_event():
    assert orjson.loads(_document_encoder(_cfg())(_ev(1))) == {"n": 1}
    assert orjson.loads(_document_encoder(_cfg())(_ev(data=[1, 2]))) == {"data": [1, 2]}
    assert orjson.loads(_document_encoder(_cfg())(_ev(data=b"\x00\x01"))) == {"data_base64": "AAE="}
    whole = orjson.loads(_document_encoder(_cfg(document="event"))(_ev(1)))
    assert whole["id"] == "e-1" and whole["data"] == {"n": 1}
    stamped = _document_encoder(_cfg(timestamp_field="@timestamp"))(_ev(1, time="2026-01-02T03:04:05Z"))
    assert orjson.loads(stamped)["@timestamp"] == "2026-01-02T03:04:05Z"


def test_index_templates_render_type_and_dates():
    assert _index_renderer(_cfg()) is None
    render = _index_renderer(_cfg(index="ev-{type}-{yyyy}.{mm}.{dd}"))
    assert render is not None
    assert render(_ev(1, time="2026-03-09T23:00:00Z")) == "ev-com.example.x-2026.03.09"


@pytest.mark.parametrize(
    ("kw", "key"),
    [
        ({"index": "Orders"}, "index"),
        ({"index": "a b"}, "index"),
        ({"index": "_x"}, "index"),
        ({"password": "p"}, "password"),
        ({"api_key": "k", "username": "u"}, "api_key"),
        ({"api_key": "k", "flavor": "opensearch"}, "api_key"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_config_errors_name_the_key(kw, key):
    with pytest.raises(ValueError, match=f"^{key}:"):
        _cfg(**kw)


def test_bulk_reply_classification():
    items = ["a", "b", "c", "d", "e"]
    reply = {
        "errors": True,
        "items": [
            {"index": {"status": 201}},
            {
                "index": {
                    "status": 429,
                    "error": {"type": "es_rejected_execution_exception", "reason": "busy"},
                }
            },
            {"index": {"status": 400, "error": {"type": "mapper_parsing_exception", "reason": "bad [n]"}}},
            {"index": {"status": 503, "error": {"type": "unavailable_shards_exception", "reason": "x"}}},
            {"index": {"status": 409, "error": {"type": "version_conflict_engine_exception", "reason": "y"}}},
        ],
    }
    failures = parse_bulk_reply(orjson.dumps(reply), items, create=False)
    got = {f.item: (f.transient, f.reason.split(":")[0]) for f in failures}
    assert got == {
        "b": (True, "429 es_rejected_execution_exception"),
        "c": (False, "400 mapper_parsing_exception"),
        "d": (True, "503 unavailable_shards_exception"),
        "e": (False, "409 version_conflict_engine_exception"),
    }
    # with op_type create, 409 means the document is already there: delivered
    assert "e" not in {f.item for f in parse_bulk_reply(orjson.dumps(reply), items, create=True)}
    assert parse_bulk_reply(b'{"took":3,"errors":false,"items":[]}', items, create=False) == []


def test_request_status_classification():
    _raise_for_status(200, b"", {})
    with pytest.raises(TransientError) as e:
        _raise_for_status(429, b'{"error":{"type":"x","reason":"slow down"}}', {"retry-after": "2"})
    assert e.value.retry_after == 2.0
    with pytest.raises(TransientError):
        _raise_for_status(502, b"bad gateway", {})
    with pytest.raises(PermanentError, match="HTTP 401 security_exception: missing authentication"):
        body = {"error": {"root_cause": [{"type": "security_exception", "reason": "missing authentication"}]}}
        _raise_for_status(401, orjson.dumps(body), {})
    with pytest.raises(PermanentError, match="batch_bytes"):
        _raise_for_status(413, b"", {})
