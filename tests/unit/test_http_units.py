"""Pure logic of the http connectors: reply handling, Retry-After, auth, request wrapping, configs."""

from __future__ import annotations

import email.utils
import json

import pytest

from meshline.config import parse_config
from meshline.connectors.http.client import Reply, auth_headers, excerpt, retry_after
from meshline.connectors.http.source import REQUEST_TYPE, HttpSourceConfig, request_to_events
from meshline.connectors.http.target import HttpTargetConfig, encode_request
from meshline.errors import ConfigError, EventError, TransformError
from meshline.events import CloudEvent
from meshline.transforms.http import HttpStep, HttpStepConfig, apply_batch_reply, apply_reply

EVENT = CloudEvent({"specversion": "1.0", "id": "1", "source": "s", "type": "t", "team": "x"}, {"a": 1})


def test_reply_binary_cloudevent_replaces_the_event():
    r = Reply(
        200,
        {
            "ce-specversion": "1.0",
            "ce-id": "9",
            "ce-source": "f",
            "ce-type": "u",
            "content-type": "application/json",
        },
        b'{"b": 2}',
    )
    out = apply_reply(EVENT, r)
    assert isinstance(out, CloudEvent) and out.type == "u" and out.data == {"b": 2}


def test_reply_plain_body_keeps_attributes():
    out = apply_reply(EVENT, Reply(200, {"content-type": "text/csv"}, b"a,b"))
    assert isinstance(out, CloudEvent)
    assert out.attributes["team"] == "x" and out.attributes["datacontenttype"] == "text/csv"
    assert out.data == "a,b"
    out = apply_reply(EVENT, Reply(200, {"content-type": "application/pdf"}, b"%PDF"))
    assert isinstance(out, CloudEvent) and out.data == b"%PDF"


def test_reply_batch_splits_and_empty_drops():
    batch = [{"specversion": "1.0", "id": str(i), "source": "f", "type": "p"} for i in range(2)]
    out = apply_reply(
        EVENT, Reply(200, {"content-type": "application/cloudevents-batch+json"}, json.dumps(batch).encode())
    )
    assert isinstance(out, list) and [e.id for e in out] == ["0", "1"]
    assert apply_reply(EVENT, Reply(204, {}, b"")) is None
    assert apply_reply(EVENT, Reply(200, {}, b"")) is None


def test_reply_broken_cloudevent_or_json_fails_the_step():
    with pytest.raises(TransformError, match="broken CloudEvent"):
        apply_reply(EVENT, Reply(200, {"content-type": "application/cloudevents+json"}, b"{}"))
    with pytest.raises(TransformError, match="JSON"):
        apply_reply(EVENT, Reply(200, {"content-type": "application/json"}, b"{nope"))


def test_retry_after_seconds_and_http_date():
    assert retry_after("3") == 3.0
    assert retry_after(None) is None and retry_after("soon") is None
    date = email.utils.formatdate(1_000_010, usegmt=True)
    assert retry_after(date, now=1_000_000) == pytest.approx(10, abs=1)


def test_auth_and_excerpt():
    assert auth_headers("u", "p", None) == {"authorization": "Basic dTpw"}
    assert auth_headers("u", "p", "t") == {"authorization": "Bearer t"}
    assert auth_headers(None, None, None) == {}
    assert excerpt(b"a\n b" + b"x" * 500).startswith("a b") and len(excerpt(b"x" * 500)) <= 260


def test_plain_request_is_wrapped():
    (e,) = request_to_events({"Content-Type": "application/json"}, b'{"k": 1}', source="http://h:1/p")
    assert e.type == REQUEST_TYPE and e.source == "http://h:1/p" and e.data == {"k": 1}
    assert len(e.id) == 36  # a uuid
    (e,) = request_to_events({"ce-id": "given"}, b"raw", source="s", type_="custom")
    assert e.id == "given" and e.type == "custom" and e.data == b"raw"
    with pytest.raises(EventError):
        request_to_events({"content-type": "application/cloudevents+json"}, b'{"id": "1"}', source="s")


def test_batch_request_encoding():
    headers, body = encode_request([EVENT, EVENT], "batch")
    assert headers["content-type"] == "application/cloudevents-batch+json"
    assert [e["id"] for e in json.loads(body)] == ["1", "1"]
    headers, body = encode_request([EVENT], "binary")
    assert headers["ce-team"] == "x" and json.loads(body) == {"a": 1}


@pytest.mark.parametrize(
    ("cls", "config", "message"),
    [
        (HttpTargetConfig, {"url": "ftp://x"}, "url"),
        (HttpTargetConfig, {"url": "http://x", "concurrency": 0}, "concurrency"),
        (HttpTargetConfig, {"url": "http://x", "password": "p"}, "username"),
        (HttpStepConfig, {"url": "http://x", "concurrency": 0}, "concurrency"),
        (HttpStepConfig, {"url": "http://x", "batch": 0}, "batch"),
        (HttpSourceConfig, {"port": 70000}, "port"),
        (HttpSourceConfig, {"port": 80, "path": "x"}, "path"),
    ],
)
def test_config_errors_name_the_key(cls, config, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(cls, config, where="test")


def _events(*ids: str) -> list[CloudEvent]:
    return [
        CloudEvent({"specversion": "1.0", "id": i, "source": "s", "type": "t", "k": i}, {"i": i}) for i in ids
    ]


def _batch_reply(*events: dict) -> Reply:
    return Reply(200, {"content-type": "application/cloudevents-batch+json"}, json.dumps(events).encode())


def _ce(id_: str, **data) -> dict:
    return {"specversion": "1.0", "id": id_, "source": "fn", "type": "done", "data": data}


def test_batch_reply_events_are_attributed_by_id():
    a, b, c, a2 = _events("a", "b", "c", "a")
    r = apply_batch_reply(
        [a, b, c, a2], _batch_reply(_ce("b", x=1), _ce("a", x=2), _ce("b", x=3), _ce("new"))
    )
    ra, rb, rc, ra2 = r.results
    assert isinstance(ra, CloudEvent) and ra.data == {"x": 2}
    assert isinstance(rb, list) and [e.data for e in rb] == [{"x": 1}, {"x": 3}]  # a split
    assert rc is None and ra2 is None  # no reply of their id: filtered; a repeated id: the first one gets it
    assert [e.id for e in r.extra] == ["new"]  # no input of that id: an output of the request as a whole


def test_batch_reply_one_structured_event_and_empty_replies():
    evs = _events("a", "b")
    one = Reply(200, {"content-type": "application/cloudevents+json"}, json.dumps(_ce("b")).encode())
    r = apply_batch_reply(evs, one)
    assert r.results[0] is None and isinstance(r.results[1], CloudEvent) and not r.extra
    assert apply_batch_reply(evs, Reply(204, {}, b"")).results == [None, None]
    assert apply_batch_reply(evs, Reply(200, {}, b"")).results == [None, None]


def test_batch_reply_json_array_replaces_data_in_order():
    evs = _events("a", "b")
    r = apply_batch_reply(evs, Reply(200, {"content-type": "application/json"}, b'[{"n": 1}, "two"]'))
    ra, rb = r.results
    assert isinstance(ra, CloudEvent) and isinstance(rb, CloudEvent)
    assert (ra.id, ra.attributes["k"], ra.data) == ("a", "a", {"n": 1})
    assert (rb.id, rb.data, rb.attributes["datacontenttype"]) == ("b", "two", "application/json")


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (Reply(200, {"content-type": "application/json"}, b"[1]"), "a JSON array of 1 items"),
        (Reply(200, {"content-type": "application/json"}, b'{"ok": true}'), "neither CloudEvents nor"),
        (Reply(200, {"content-type": "text/plain"}, b"ok"), "content type 'text/plain'"),
        (Reply(200, {"content-type": "application/json"}, b"[nope"), "JSON"),
        (Reply(200, {"content-type": "application/cloudevents-batch+json"}, b"[{}]"), "broken CloudEvent"),
    ],
)
def test_batch_reply_that_fits_no_rule_fails_the_request(reply, message):
    with pytest.raises(TransformError, match=message):
        apply_batch_reply(_events("a", "b"), reply)


@pytest.mark.parametrize("batch", [1, 2])  # concurrent single-event requests / batch requests
def test_failed_batch_request_fails_each_of_its_events(batch):
    import socket

    with socket.socket() as s:  # a port nothing listens on: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = parse_config(
        HttpStepConfig, {"url": f"http://127.0.0.1:{port}/", "batch": batch, "concurrency": 2, "retries": 0}
    )
    step = HttpStep(config)
    assert step.batch_size == 2 * batch
    try:
        r = step.batch(_events("a", "b", "c"))
    finally:
        step.close()
    assert len(r.results) == 3 and not r.extra
    assert all(isinstance(x, TransformError) and "function call failed" in str(x) for x in r.results)


def test_http_step_defaults_are_one_event_one_request():
    config = parse_config(HttpStepConfig, {"url": "http://x"})
    assert (config.batch, config.concurrency) == (1, 1)
    assert HttpStep(config).batch_size == 1  # the router calls it per event, as before


def test_webhook_head_parser_accepts_plain_heads_and_names_the_refusal():
    from meshline.connectors.http.wire import Reject, parse_head

    method, target, version, headers = parse_head(
        b"POST /in?x=1 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:  Chunked \r\n"
        b"X-Tag: a\r\nX-Tag: b\r\nce-subject: caf\xc3\xa9\r\n\r\n"
    )
    assert (method, target, version) == ("POST", "/in?x=1", "1.1")
    assert headers["transfer-encoding"] == "chunked" and headers["x-tag"] == "a, b"
    assert headers["ce-subject"].encode("latin-1").decode() == "café"  # bytes kept as they came
    with pytest.raises(Reject, match="both Content-Length and Transfer-Encoding") as e:
        parse_head(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n")
    assert e.value.response.status == 400 and e.value.kind == "bad_request"
