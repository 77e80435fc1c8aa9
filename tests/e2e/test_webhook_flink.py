"""The webhook source on embedded Flink (``--runner flink``, ``[local]``): 202 after a checkpoint.

On Flink, bundle finalization — and so the webhook's 202 — follows a checkpoint
(Meshline sets ``--checkpointing_interval``), so a sender waits about one
interval. This webhook never ends (no ``idle_timeout``), so neither does the run:
the test stops it with Ctrl-C once the files are written.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.e2e.flink_support import flink_job_server

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def job_server() -> str:
    return flink_job_server()


def _post(url: str, i: int) -> int:
    req = urllib.request.Request(
        url, data=json.dumps({"i": i}).encode(), headers={"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_webhook_on_embedded_flink(tmp_path, job_server):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "out"
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "apiVersion: meshline.dev/v1alpha1\nkind: Integration\nmetadata: {name: webhook-flink}\nspec:\n"
        f"  sources:\n    - {{name: hook, type: http, config: {{port: {port}, path: /e, ack_timeout: 60s}}}}"
        "\n"
        f'  targets:\n    - {{name: out, type: file, config: {{path: "{out}", window: 2s}}}}\n'
        "  triggers:\n    - {name: all, target: out}\n"
    )
    exe = Path(sys.executable).parent / "meshline"
    proc = subprocess.Popen(
        [str(exe), "run", str(spec), "--runner", "flink"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    got: list[int] = []
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert proc.poll() is None, proc.communicate()[1].decode(errors="replace")[-2000:]
                # The reading SDF was never scheduled: the stall that --finish_bundle_before_checkpointing
                # cured (see meshline.runners.flink).
                assert time.monotonic() < deadline, "the webhook never started"
                time.sleep(0.5)
        url = f"http://127.0.0.1:{port}/e"
        with ThreadPoolExecutor(10) as pool:
            codes = list(pool.map(lambda i: _post(url, i), range(20)))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(got) < 20:
            time.sleep(1)
            got = [
                json.loads(x)["data"]["i"] for f in out.glob("*.jsonl") for x in f.read_text().splitlines()
            ]
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    assert codes == [202] * 20
    assert sorted(got) == list(range(20))
