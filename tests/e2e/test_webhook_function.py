"""pipelines/webhook-function-to-file.yaml end to end on Prism: webhook → HTTP function → files.

A real HTTP function (http.server on 127.0.0.1) prices orders; the test posts
events in every CloudEvents mode plus plain JSON, and checks what a sender and
a reader of the files see: 202 only once the event is in a written file, 400 for
a broken CloudEvent, priced events in ``priced/``, the function's 422 in the
dead letters, a 204 reply dropping the event.
"""

from __future__ import annotations

import glob
import http.server
import json
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.harness import free_port, wait_listening

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
PIPELINE = ROOT / "pipelines" / "webhook-function-to-file.yaml"


class _Function(http.server.BaseHTTPRequestHandler):
    """Prices an order: binary CloudEvent in, binary CloudEvent out; 0 → 204; < 0 → 422."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        assert self.headers.get("ce-specversion") == "1.0", "the step must send binary mode"
        order = json.loads(body)
        amount = order["amount"]
        if amount == 0:
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if amount < 0:
            out = b'{"error": "negative amount"}'
            self.send_response(422)
        else:
            out = json.dumps({**order, "total": round(amount * 1.2, 2)}).encode()
            self.send_response(200)
            self.send_header("ce-specversion", "1.0")
            self.send_header("ce-id", self.headers["ce-id"])
            self.send_header("ce-source", "https://functions.example/price")
            self.send_header("ce-type", "com.example.order.priced")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


@pytest.fixture
def function_url():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Function)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def _written(output: Path) -> str:
    """Everything in the output folder, temporary (this bundle's) and final files alike."""
    text = []
    for folder, _, files in os.walk(output):  # os.walk, not glob: glob skips .meshline-tmp
        if ".meshline/" in folder + "/":
            continue  # the ledger: digests, not events
        for name in files:
            try:
                text.append(Path(folder, name).read_text(errors="replace"))
            except FileNotFoundError:  # renamed to its final name meanwhile: seen there
                return _written(output)
    return "\n".join(text)


def _requests(url: str) -> list[tuple[str, bytes, dict[str, str]]]:
    """(marker, body, headers): every mode the webhook accepts. 26 events in all."""
    out = []
    for i in range(10):  # binary mode
        out.append(
            (
                f"o-{i}",
                json.dumps({"order": f"o-{i}", "amount": 10 + i}).encode(),
                {
                    "ce-specversion": "1.0",
                    "ce-id": f"b{i}",
                    "ce-source": "shop",
                    "ce-type": "com.example.order.created",
                    "content-type": "application/json",
                },
            )
        )
    for i in range(10, 15):  # structured mode
        ev = {
            "specversion": "1.0",
            "id": f"s{i}",
            "source": "shop",
            "type": "com.example.order.created",
            "data": {"order": f"o-{i}", "amount": 10 + i},
        }
        out.append((f"o-{i}", json.dumps(ev).encode(), {"content-type": "application/cloudevents+json"}))
    for i in range(15, 20):  # plain JSON posts: wrapped as dev.meshline.http.request
        body = json.dumps({"order": f"o-{i}", "amount": 10 + i}).encode()
        out.append((f"o-{i}", body, {"content-type": "application/json"}))
    batch = [
        {
            "specversion": "1.0",
            "id": f"m{i}",
            "source": "shop",
            "type": "com.example.order.created",
            "data": {"order": f"o-{i}", "amount": 10 + i},
        }
        for i in range(20, 23)
    ]
    out.append(("o-20", json.dumps(batch).encode(), {"content-type": "application/cloudevents-batch+json"}))
    out.append(("o-23", b'{"order": "o-23", "amount": 0}', {"content-type": "application/json"}))
    out.append(("o-24", b'{"order": "o-24", "amount": -5}', {"content-type": "application/json"}))
    ping = {
        "specversion": "1.0",
        "id": "p1",
        "source": "monitor",
        "type": "com.example.ping",
        "data": {"p": "p-1"},
    }
    out.append(("p-1", json.dumps(ping).encode(), {"content-type": "application/cloudevents+json"}))
    return out


def test_webhook_function_to_file_on_prism(tmp_path, function_url):
    port = free_port()
    output = tmp_path / "out"
    # --param values are strings and the webhook's port is an integer: give typed defaults instead.
    text = PIPELINE.read_text()
    text = text.replace("default: 8088}", f"default: {port}}}").replace("default: 0}", "default: 26}")
    assert f"default: {port}" in text and "default: 26" in text
    spec = tmp_path / "webhook.yaml"
    spec.write_text(text)
    exe = Path(sys.executable).parent / "meshline"
    proc = subprocess.Popen(
        [
            str(exe),
            "run",
            str(spec),
            "--runner",
            "prism",
            "--param",
            f"function_url={function_url}",
            "--param",
            f"output={output}",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_listening(port, proc, 180)
        url = f"http://127.0.0.1:{port}/orders"
        # A broken CloudEvent is refused at the door with the reason, and never enters the pipeline.
        status, reply = _post(
            url, b'{"specversion": "1.0", "type": "x"}', {"content-type": "application/cloudevents+json"}
        )
        assert status == 400 and "id" in reply, (status, reply)
        status, _ = _post(f"http://127.0.0.1:{port}/elsewhere", b"{}", {"content-type": "application/json"})
        assert status == 404

        def send(item):
            marker, body, headers = item
            status, reply = _post(url, body, headers)
            # 202 means committed: the event (or what the function made of it) is already written.
            return marker, status, reply, f'"{marker}"' in _written(output)

        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(send, _requests(url)))
        for marker, status, reply, seen in results:
            assert status == 202, (marker, status, reply)
            if marker != "o-23":  # the function dropped o-23 (204): nothing to write
                assert seen, f"{marker}: 202 before its event was written"
        _, stderr = proc.communicate(timeout=180)
        assert proc.returncode == 0, stderr
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()

    def read(folder: str) -> list[dict]:
        rows = []
        for f in sorted(glob.glob(str(output / folder / "**" / "*.jsonl"), recursive=True)):
            rows += [json.loads(line) for line in Path(f).read_text().splitlines() if line.strip()]
        return rows

    priced = read("priced")
    orders = sorted(e["data"]["order"] for e in priced)
    assert orders == sorted(f"o-{i}" for i in range(23)), orders
    assert all(e["type"] == "com.example.order.priced" for e in priced)
    assert {e["data"]["order"]: e["data"]["total"] for e in priced}["o-3"] == 15.6
    rejects = read("dead-letters")
    assert [e["data"]["order"] for e in rejects] == ["o-24"]
    assert rejects[0]["meshlineerrorstage"] == "transform"
    assert rejects[0]["meshlinestep"] == "price"
    assert "422" in rejects[0]["meshlineerror"] and "negative amount" in rejects[0]["meshlineerror"]
    other = read("other")
    assert [e["id"] for e in other] == ["p1"]
    # nothing but the events, and the target's ledger of what it stored (.meshline/, see objects.py)
    walk = [(d, f) for d, _, files in os.walk(output) for f in files]
    leftovers = [f for d, f in walk if ".meshline" not in d and not f.endswith(".jsonl")]
    assert not leftovers, leftovers
    assert [p for p in output.rglob("*.ids") if ".meshline" in p.parts]  # the webhook source may redeliver
