"""A quick latency probe: webhook (``http`` source) → ``http`` target at a steady rate, on one runner.

    PYTHONPATH=. python -m bench.latency_probe --runner flink --rate 50 --seconds 30 [-- BEAM_OPTION…]

A client POSTs one CloudEvent every 1/rate seconds (each on its own thread, so a slow 202
does not hold back the next send) and records how long its 202 took: the acknowledgement,
which the webhook sends once the runner has committed the event. A local receiver records
when each event arrives: the delivery latency. Prints p50/p95/p99 of both (ms) and the load
average. The committed B9 benchmark (``make bench``) measures more; this is the quick check
used while choosing the per-runner defaults in ``docs/runners.md``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.harness import free_port, meshline_exe, wait_listening

WARMUP = 5.0  # seconds of sending before the probe starts counting


def _spec(source_port: int, target_port: int, execution: str, source: str = "") -> str:
    return (
        "apiVersion: meshline.dev/v1alpha1\nkind: Integration\nmetadata: {name: latency-probe}\nspec:\n"
        f"{execution}"
        f"  sources:\n    - {{name: hook, type: http, config: {{port: {source_port}{source}}}}}\n"
        f"  targets:\n    - {{name: out, type: http, config: {{url: 'http://127.0.0.1:{target_port}/'}}}}\n"
        "  triggers:\n    - {name: all, target: out}\n"
    )


def _percentiles(values: list[float]) -> str:
    if len(values) < 2:
        return f"n={len(values)}"
    q = statistics.quantiles(values, n=100, method="inclusive")
    return f"n={len(values)} p50={q[49] * 1000:.0f} p95={q[94] * 1000:.0f} p99={q[98] * 1000:.0f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runner", default="prism")
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--execution", default="", help="a YAML flow mapping for spec.execution")
    parser.add_argument("--source", default="", help="more webhook config, e.g. 'batch: 1000'")
    parser.add_argument("beam_args", nargs="*")
    args = parser.parse_args()

    sent: dict[str, float] = {}
    arrived: dict[str, float] = {}
    acked: dict[str, float] = {}
    lock = threading.Lock()

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            with lock:
                arrived.setdefault(self.headers.get("ce-id", ""), time.monotonic())
            self.send_response(204)
            self.end_headers()

        def log_message(self, *a: object) -> None:
            return None

    target_port, source_port = free_port(), free_port()
    receiver = ThreadingHTTPServer(("127.0.0.1", target_port), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    execution = f"  execution: {args.execution}\n" if args.execution else ""
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "probe.yaml"
        spec.write_text(_spec(source_port, target_port, execution, f", {args.source}" if args.source else ""))
        cmd = [meshline_exe(), "run", str(spec), "--runner", args.runner]
        if args.beam_args:
            cmd += ["--", *args.beam_args]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_listening(source_port, proc, seconds=180)
            body = json.dumps({"hello": "probe"}).encode()

            def post(event_id: str) -> None:
                conn = http.client.HTTPConnection("127.0.0.1", source_port, timeout=60)
                headers = {
                    "ce-specversion": "1.0",
                    "ce-id": event_id,
                    "ce-source": "probe",
                    "ce-type": "probe",
                    "content-type": "application/json",
                }
                start = time.monotonic()
                with lock:
                    sent[event_id] = start
                try:
                    conn.request("POST", "/", body, headers)
                    if conn.getresponse().status == 202:
                        with lock:
                            acked[event_id] = time.monotonic() - start
                finally:
                    conn.close()

            # First a single event through, so start-up is not measured.
            deadline = time.monotonic() + 180
            post("warm-0")
            while "warm-0" not in arrived and time.monotonic() < deadline:
                time.sleep(0.1)
            threads = []
            start = time.monotonic()
            n = int((WARMUP + args.seconds) * args.rate)
            for i in range(n):
                time.sleep(max(0.0, start + i / args.rate - time.monotonic()))
                t = threading.Thread(target=post, args=(f"{'w' if i < WARMUP * args.rate else 'e'}-{i}",))
                t.start()
                threads.append(t)
            for t in threads:
                t.join(timeout=90)
            time.sleep(1)
        finally:
            proc.terminate()
            proc.wait(timeout=60)
            receiver.shutdown()
    measured = [k for k in sent if k.startswith("e-")]
    delivery = [arrived[k] - sent[k] for k in measured if k in arrived]
    ack = [acked[k] for k in measured if k in acked]
    load = Path("/proc/loadavg").read_text().split()[:3]
    print(
        f"runner={args.runner} rate={args.rate}/s execution={args.execution or '-'}",
        " ".join(args.beam_args),
    )
    print(f"  delivery: {_percentiles(delivery)}  (lost {len(measured) - len(delivery)})")
    print(f"  ack 202:  {_percentiles(ack)}  (not 202: {len(measured) - len(ack)})")
    print(f"  loadavg {' '.join(load)}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
