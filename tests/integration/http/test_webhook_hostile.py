"""The webhook against hostile and broken clients, over raw sockets.

Ambiguous framing is refused before the body is read (each case sends only its
head, so the reply can only come from a server that did not wait for a body),
slow clients are cut off by deadlines, idle connections cannot starve real
requests, every method needs the credentials, and dropped clients leave no
traceback. Nothing refused ever reaches the pipeline.
"""

from __future__ import annotations

import json
import logging
import resource
import socket
import struct
import time

import pytest

from meshline.config import parse_config
from meshline.connectors.http.source import HttpSourceConfig, _WebhookReader
from tests.harness import running, wait_listening
from tests.integration.http.support import (
    closed_by_server,
    connect,
    free_port,
    read_reply,
    still_open,
    trickle,
)

pytestmark = pytest.mark.integration
LIMIT = 1000
HEAD = b"POST /in HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"


def _valid(body: bytes = b'{"a": 1}', extra: bytes = b"") -> bytes:
    return HEAD + extra + b"Content-Length: %d\r\n\r\n" % len(body) + body


def _pull(reader, n: int, deadline: float = 30.0) -> list:
    got: list = []
    end = time.monotonic() + deadline
    while len(got) < n and time.monotonic() < end:
        got += reader.pull(n - len(got), 0.2)
    return got


@pytest.fixture(scope="module")
def strict():
    """One webhook (max_body_bytes 1000) for the framing cases; (reader, port)."""
    port = free_port()
    reader = _WebhookReader(
        parse_config(HttpSourceConfig, {"port": port, "path": "/in", "max_body_bytes": LIMIT}, where="test")
    )
    yield reader, port
    reader.close()


FRAMING = {
    "negative Content-Length": (b"Content-Length: -1\r\n", 400),
    "Content-Length over max_body_bytes": (b"Content-Length: 20971520\r\n", 413),
    "Content-Length +12": (b"Content-Length: +12\r\n", 400),
    "Content-Length 1_2": (b"Content-Length: 1_2\r\n", 400),
    "empty Content-Length": (b"Content-Length: \r\n", 400),
    "hex Content-Length": (b"Content-Length: 0x10\r\n", 400),
    "Content-Length with a space inside": (b"Content-Length: 1 2\r\n", 400),
    "two differing Content-Length": (b"Content-Length: 12\r\nContent-Length: 13\r\n", 400),
    "two equal Content-Length": (b"Content-Length: 12\r\nContent-Length: 12\r\n", 400),
    "Content-Length list": (b"Content-Length: 12, 12\r\n", 400),
    "Transfer-Encoding gzip, chunked": (b"Transfer-Encoding: gzip, chunked\r\n", 400),
    "Transfer-Encoding chunked, chunked": (b"Transfer-Encoding: chunked, chunked\r\n", 400),
    "two Transfer-Encoding": (b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", 400),
    "Transfer-Encoding identity": (b"Transfer-Encoding: identity\r\nContent-Length: 12\r\n", 400),
    "space before the colon": (b"Transfer-Encoding : chunked\r\n", 400),
    "Content-Length and Transfer-Encoding": (b"Content-Length: 12\r\nTransfer-Encoding: chunked\r\n", 400),
    "obsolete line folding": (b"X-Note: a\r\n folded\r\nContent-Length: 12\r\n", 400),
    "NUL in a header": (b"X-Note: a\x00b\r\nContent-Length: 12\r\n", 400),
    "bare CR in a header": (b"X-Note: a\rb\r\nContent-Length: 12\r\n", 400),
    "two Authorization": (b"Authorization: Bearer a\r\nAuthorization: Bearer b\r\n", 400),
    "two ce-id": (b"ce-id: 1\r\nce-id: 2\r\nContent-Length: 12\r\n", 400),
    "Expect other than 100-continue": (b"Expect: 200-ok\r\nContent-Length: 12\r\n", 417),
}


@pytest.mark.parametrize("case", list(FRAMING))
def test_ambiguous_framing_is_refused_before_the_body(strict, case):
    reader, port = strict
    fields, expected = FRAMING[case]
    with connect(port) as s:
        s.sendall(HEAD + fields + b"\r\n")  # the head only: a reply proves the body was not awaited
        status, _, _ = read_reply(s)
        assert status == expected
        assert closed_by_server(s)  # the unread body can't be taken for the next request
    assert reader.pull(10, 0.05) == []


@pytest.mark.parametrize(
    ("case", "head", "expected"),
    [
        ("bare LF line ends", b"POST /in HTTP/1.1\nHost: x\nContent-Length: 12\n\n", 400),
        ("bare LF in one line", b"POST /in HTTP/1.1\r\nHost: x\nContent-Length: 12\r\n\r\n", 400),
        ("HTTP/2.0 in HTTP/1 framing", b"POST /in HTTP/2.0\r\nHost: x\r\nContent-Length: 12\r\n\r\n", 505),
        ("no Host", b"POST /in HTTP/1.1\r\nContent-Length: 12\r\n\r\n", 400),
        ("authority target", b"POST 127.0.0.1:80 HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n", 400),
    ],
)
def test_malformed_heads_are_refused(strict, case, head, expected):
    reader, port = strict
    with connect(port) as s:
        s.sendall(head)
        assert read_reply(s)[0] == expected
        assert closed_by_server(s)
    assert reader.pull(10, 0.05) == []


def test_chunked_bodies_are_strict_and_cut_off_at_the_limit(webhook):
    reader, url = webhook(path="/in", max_body_bytes=LIMIT)
    port = int(url.split(":")[2].split("/")[0])
    chunked = HEAD + b"Transfer-Encoding: chunked\r\n\r\n"
    with connect(port) as s:
        s.sendall(chunked)
        for _ in range(10):  # 1000 bytes: exactly the limit, still fine
            s.sendall(b"64\r\n" + b"x" * 100 + b"\r\n")
        s.sendall(b"64\r\n")  # an 11th chunk would pass it: refused before its data is sent
        status, _, text = read_reply(s)
        assert status == 413 and b"1000" in text
        assert closed_by_server(s)
    with connect(port) as s:
        s.sendall(chunked + b"FFFFFFFF\r\n")  # one huge chunk: refused from its size line
        assert read_reply(s)[0] == 413
    for case, body in {
        "bare LF after the last chunk": b"3\r\n{}\n\r\n0\r\n\n",
        "trailer fields": b"2\r\n{}\r\n0\r\nX-Smuggle: 1\r\n\r\n",
        "chunk size with a sign": b"+2\r\n{}\r\n0\r\n\r\n",
        "chunk not followed by CRLF": b"2\r\n{}XX0\r\n\r\n",
    }.items():
        with connect(port) as s:
            s.sendall(chunked + body)
            assert read_reply(s)[0] == 400, case
    assert reader.pull(10, 0.05) == []

    # A well-formed chunked request goes through, its body reassembled.
    with connect(port) as s:
        s.sendall(chunked + b'5\r\n{"a":\r\n3;ext=1\r\n 7}\r\n0\r\n\r\n')
        (msg,) = _pull(reader, 1)
        assert msg.event.data == {"a": 7}
        reader.ack([msg.ack_id])
        assert read_reply(s)[0] == 202


def test_a_thousand_idle_connections_leave_a_request_answered(webhook):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 2600  # the 1,000 client sockets and the server's 1,000 live in this process
    if soft != resource.RLIM_INFINITY and soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
    idle: list[socket.socket] = []
    try:
        reader, url = webhook(path="/in", header_timeout="300s")
        port = int(url.split(":")[2].split("/")[0])
        for i in range(1000):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            if i % 2:
                s.sendall(b"POST /in HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le")  # half a head
            idle.append(s)
        with connect(port) as real:
            real.sendall(_valid())
            msgs = _pull(reader, 1)
            reader.ack([m.ack_id for m in msgs])
            assert [m.event.data for m in msgs] == [{"a": 1}]
            assert read_reply(real)[0] == 202
        assert sum(still_open(s) for s in idle) == 1000  # answered while all of them were still open
    finally:
        for s in idle:
            s.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_slow_clients_are_cut_off_by_deadlines(webhook):
    reader, url = webhook(path="/in", header_timeout="1s", body_timeout="1s", keepalive_timeout="1s")
    port = int(url.split(":")[2].split("/")[0])
    # A head a byte every 0.2 s: never idle for long, but never done within header_timeout.
    head = HEAD + b"X-Pad: " + b"a" * 200 + b"\r\nContent-Length: 2\r\n\r\n{}"
    with connect(port) as s:
        sent, got = trickle(s, head, every=0.2)
    assert sent < len(head) and got.startswith(b"HTTP/1.1 408 ")  # trickle stops at the server's close
    # A body a byte every 0.2 s: the same for body_timeout.
    with connect(port) as s:
        s.sendall(HEAD + b"Content-Length: 200\r\n\r\n")
        body = b'{"a": "' + b"b" * 190 + b'"}'
        sent, got = trickle(s, body, every=0.2)
    assert sent < len(body) and got.startswith(b"HTTP/1.1 408 ")
    assert reader.pull(10, 0.05) == []
    # An idle kept-alive connection is closed after keepalive_timeout.
    with connect(port) as s:
        s.sendall(_valid())
        msgs = _pull(reader, 1)
        reader.ack([m.ack_id for m in msgs])
        status, headers, _ = read_reply(s)
        assert status == 202 and headers.get("connection") != "close"
        assert closed_by_server(s)


def test_every_method_needs_auth_and_no_origin_is_echoed(webhook):
    reader, url = webhook(path="/in", token="tok-9", allowed_origins=["eventgrid.azure.net"])
    port = int(url.split(":")[2].split("/")[0])
    evil = b"Origin: https://evil.example\r\nWebHook-Request-Origin: evil.example\r\n"

    def ask(method: bytes, extra: bytes = b"", origin: bytes = evil) -> tuple[int, dict[str, str]]:
        with connect(port) as s:
            s.sendall(method + b" /in HTTP/1.1\r\nHost: 127.0.0.1\r\n" + origin + extra + b"\r\n")
            status, headers, _ = read_reply(s, head=method == b"HEAD")
        assert not any(k.startswith("access-control-") for k in headers)  # no CORS at all
        assert "evil" not in json.dumps(headers)
        return status, headers

    for method in (b"OPTIONS", b"GET", b"HEAD", b"PUT", b"DELETE", b"PATCH", b"POST"):
        status, headers = ask(method)
        assert status == 401 and headers["www-authenticate"] == "Bearer", method
    auth = b"Authorization: Bearer tok-9\r\n"
    for method in (b"GET", b"HEAD", b"PUT", b"DELETE", b"PATCH"):
        status, headers = ask(method, auth)
        assert status == 405 and headers["allow"] == "POST, OPTIONS", method
    status, headers = ask(b"OPTIONS", auth)  # an origin not configured gets no consent
    assert status == 200 and "webhook-allowed-origin" not in headers
    status, headers = ask(b"OPTIONS", auth, origin=b"WebHook-Request-Origin: EventGrid.Azure.net\r\n")
    assert status == 200 and headers["webhook-allowed-origin"] == "eventgrid.azure.net"  # as configured
    assert reader.pull(10, 0.05) == []


def test_caps_on_requests_in_flight_and_connections(webhook):
    reader, url = webhook(path="/in", max_in_flight=1, max_connections=2)
    port = int(url.split(":")[2].split("/")[0])
    with connect(port) as a, connect(port) as b:
        a.sendall(_valid(b'{"n": 1}'))
        first = _pull(reader, 1)  # pulled, not committed: a's request stays in flight
        b.sendall(_valid(b'{"n": 2}'))
        status, headers, _ = read_reply(b)
        assert status == 503 and headers["retry-after"] == "1"
        reader.ack([m.ack_id for m in first])
        assert read_reply(a)[0] == 202

    # At max_connections a new connection replaces the one that has waited longest for a request.
    reader, url = webhook(path="/in", max_connections=2, max_in_flight=10)
    port = int(url.split(":")[2].split("/")[0])
    with connect(port) as old, connect(port) as newer:  # accepted in this order: the kernel's queue
        with connect(port) as real:
            real.sendall(_valid())
            msgs = _pull(reader, 1)
            reader.ack([m.ack_id for m in msgs])
            assert read_reply(real)[0] == 202
        assert closed_by_server(old) and still_open(newer)

    # When every connection is busy with a request, new ones wait in the backlog until one ends.
    with connect(port) as a, connect(port) as b:
        a.sendall(_valid(b'{"n": "a"}'))
        b.sendall(_valid(b'{"n": "b"}'))
        busy = _pull(reader, 2)
        with connect(port) as c:
            c.sendall(_valid(b'{"n": "c"}'))
            assert reader.pull(10, 1.0) == []  # c's request is not read while a and b hold the slots
            reader.ack([m.ack_id for m in busy])
            assert read_reply(a)[0] == 202 and read_reply(b)[0] == 202
            (last,) = _pull(reader, 1)
            assert last.event.data == {"n": "c"}
            reader.ack([last.ack_id])
            assert read_reply(c)[0] == 202


def test_dropped_clients_are_counted_not_traced(webhook, caplog):
    caplog.set_level(logging.INFO)
    reader, url = webhook(path="/in", token="tok-secret-123")
    port = int(url.split(":")[2].split("/")[0])
    auth = b"Authorization: Bearer tok-secret-123\r\n"
    for _ in range(4):
        with connect(port) as s:  # gone in the middle of the head
            s.sendall(b"POST /in HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthori")
        with connect(port) as s:  # gone in the middle of the body
            s.sendall(HEAD + auth + b'Content-Length: 100\r\n\r\n{"secret-body": ')
        with connect(port) as s:  # reset (RST) instead of a close, once the server reads the body
            s.sendall(HEAD + auth + b"Expect: 100-continue\r\nContent-Length: 100\r\n\r\n")
            assert s.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
            s.sendall(b"{")
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    counts = reader._server.http.counts
    end = time.monotonic() + 30
    while counts["dropped"] < 12 and time.monotonic() < end:
        time.sleep(0.05)
        counts = reader._server.http.counts
    assert counts["dropped"] == 12
    with connect(port) as s:  # and the webhook carries on
        s.sendall(_valid(extra=auth))
        msgs = _pull(reader, 1)
        reader.ack([m.ack_id for m in msgs])
        assert read_reply(s)[0] == 202
    reader.close()  # reports what it counted since the first one was logged
    records = [r for r in caplog.records if r.name.startswith(("meshline", "asyncio"))]
    assert not [r for r in records if r.exc_info], "a traceback was logged"
    text = "\n".join(r.getMessage() for r in records)
    assert "Traceback" not in text and "tok-secret-123" not in text and "secret-body" not in text
    assert sum("closed the connection in the middle" in r.getMessage() for r in records) == 1
    assert "until it stopped: 11 dropped" in text


def test_meshline_run_refuses_smuggling_and_survives_drops(tmp_path):
    """Under ``meshline run``: refused requests never reach the target; no traceback on stderr."""
    port = free_port()
    out = tmp_path / "out"
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"""
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {{name: webhook-hostile}}
spec:
  sources:
    - {{name: hook, type: http, config: {{port: {port}, path: /e, max_events: 3, token: tok-secret-123}}}}
  targets:
    - {{name: out, type: file, config: {{path: "{out}"}}}}
  triggers:
    - {{name: all, target: out}}
"""
    )
    with running("run", str(spec), "--runner", "direct") as proc:
        wait_listening(port, proc)
        auth = b"Authorization: Bearer tok-secret-123\r\n"
        head = b"POST /e HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" + auth
        smuggled = b"POST /e HTTP/1.1\r\nHost: x\r\n" + auth + b'Content-Length: 18\r\n\r\n{"smuggled": true}'
        for framing in (
            b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled,
            b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n" + smuggled,
            b"Content-Length: -1\r\n\r\n" + smuggled,
            b"Content-Length: 18\r\nContent-Length: 0\r\n\r\n" + smuggled,
        ):
            with connect(port) as s:
                s.sendall(head + framing)
                assert read_reply(s)[0] == 400
        for _ in range(3):
            with connect(port) as s:
                s.sendall(head + b'Content-Length: 50\r\n\r\n{"secret-body')
        for i in range(3):
            with connect(port) as s:
                s.sendall(head + b"Content-Length: 8\r\n\r\n" + json.dumps({"i": i}).encode())
                assert read_reply(s)[0] == 202
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    rows = [json.loads(x) for f in out.glob("*.jsonl") for x in f.read_text().splitlines()]
    assert sorted(r["data"]["i"] for r in rows) == [0, 1, 2]  # and nothing smuggled
    assert "Traceback" not in err and "tok-secret-123" not in err and "secret-body" not in err
    assert "source hook: 4 bad_request" in err
