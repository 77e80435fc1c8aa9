"""A streaming run outlives the Job API's request timeout.

Beam gives the job's state and message streams the request timeout (``--job_server_timeout``,
300 s by default) as a deadline: on Prism a streaming integration was reported failed five
minutes into its run (``DEADLINE_EXCEEDED``) while it still ran. Here the timeout is cut to
3 s so that a test can go past it: the webhook still answers and delivers well after it, and
Ctrl-C ends the run as a user would expect.
"""

from __future__ import annotations

import json
import signal
import time
import urllib.request
from pathlib import Path

import pytest

from tests.harness import component, free_port, integration, rows_in, running, trigger, wait_listening

pytestmark = pytest.mark.e2e

TIMEOUT_S = 3


def _post(url: str, i: int) -> int:
    req = urllib.request.Request(
        url, data=json.dumps({"i": i}).encode(), headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.status


def test_a_streaming_run_on_prism_outlives_the_job_server_timeout(tmp_path: Path):
    port = free_port()
    out = tmp_path / "out"
    spec = integration(
        tmp_path / "hook.yaml",
        sources=[component("hook", "http", port=port, path="/e")],
        targets=[component("out", "file", path=str(out), window="1s")],
        triggers=[trigger("all", "out")],
    )
    with running("run", str(spec), "--runner", "prism", "--", f"--job_server_timeout={TIMEOUT_S}") as proc:
        wait_listening(port, proc, 180)
        url = f"http://127.0.0.1:{port}/e"
        assert _post(url, 0) == 202
        time.sleep(4 * TIMEOUT_S)  # the streams' old deadline has passed
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert _post(url, 1) == 202
        deadline = time.monotonic() + 60
        while len(rows_in(out)) < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    assert "DEADLINE_EXCEEDED" not in err, err[-3000:]
    assert sorted(r["data"]["i"] for r in rows_in(out)) == [0, 1]
    assert proc.returncode in (0, 130), err[-3000:]
