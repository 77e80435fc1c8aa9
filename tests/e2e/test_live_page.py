"""``meshline run --ui``: the live page in headless Chromium, and the endpoint scraped by Prometheus.

The page test loads the page of a webhook integration on Prism, checks the graph shows every
stage, that the numbers rise while events flow, that a poisoned event appears in the dead-letter
panel with its reason (its event a click away), that a tap on a step shows that step's events,
and that the webhook token — a secret parameter — is nowhere in the page or any of its
responses. It saves a screenshot (docs/images/live-page.png is one).
"""

from __future__ import annotations

import json
import signal
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.observe_support import TOKEN, get, post, wait_until, watched_integration
from tests.harness import free_port, running, wait_listening

pytestmark = pytest.mark.e2e

SCREENSHOT = Path(__file__).resolve().parents[2] / "out" / "live-page.png"


def _count(page, stage: str, what: str) -> int:
    return int(page.evaluate(f"Number(document.querySelector('[data-id=\"{stage}\"]').dataset.{what} || 0)"))


def test_the_live_page_shows_the_run(tmp_path: Path):
    from tests.servers.chromium import Browser

    port, ui = free_port(), free_port()
    spec = watched_integration(tmp_path, port)
    base = f"http://127.0.0.1:{ui}/"
    with running("run", str(spec), "--runner", "prism", f"--ui={ui}", "--mask", "data.n") as proc:
        wait_listening(port, proc, 180)
        with Browser() as browser, browser.open(base + "#tap=step.price") as page:
            stages = page.wait_for(
                "document.querySelectorAll('#graph .node').length === 5 && "
                "[...document.querySelectorAll('#graph .node')].map(n => n.dataset.id)"
            )
            assert sorted(stages) == [
                "source.hook",
                "step.price",
                "target.priced",
                "target.rejects",
                "trigger.orders",
            ]
            for i in range(5):
                assert post(port, i) == 202
            page.wait_for("Number(document.querySelector('[data-id=\"target.priced\"]').dataset.out) === 5")
            for i in range(5, 12):
                assert post(port, i, poisoned=i == 9) == 202
            page.wait_for("Number(document.querySelector('[data-id=\"target.priced\"]').dataset.out) === 11")
            assert _count(page, "source.hook", "in") == 12  # the numbers rose as events flowed
            assert _count(page, "trigger.orders", "dead") == 1
            assert "/s" in page.evaluate(
                "document.querySelector('[data-id=\"source.hook\"] .counts').textContent"
            )
            # the poisoned event in the dead-letter panel, with its reason; its event one click away
            row = page.wait_for(
                "document.querySelector('#dead tbody tr') && "
                "[...document.querySelectorAll('#dead tbody tr td')].map(td => td.textContent)"
            )
            assert row[1:4] == ["transform", "orders", "price"], row
            assert "cannot be multiplied" in row[4], row
            page.evaluate("document.querySelector('#dead tbody tr').click()")
            shown = json.loads(page.evaluate("document.getElementById('dead-event').textContent"))
            assert shown["id"] == "o9" and shown["data"]["qty"] == {"bad": True}
            assert shown["data"]["n"] == "***"  # --mask data.n
            # the tap chosen in the address: the step's outputs (with the field the step adds)
            for i in range(12, 16):
                assert post(port, i) == 202
            tapped = page.wait_for(
                "document.querySelectorAll('#tap-events pre').length >= 1 && "
                "[...document.querySelectorAll('#tap-events pre')].map(p => p.textContent)"
            )
            events = [json.loads(t) for t in tapped]
            assert all(
                e["type"] == "order" and e["data"]["total"] == e["data"]["qty"] * 3 + 1 for e in events
            )
            # choosing another stage by clicking it
            page.evaluate(
                "document.querySelector('[data-id=\"source.hook\"]')"
                ".dispatchEvent(new MouseEvent('click', {bubbles: true}))"
            )
            assert page.evaluate("document.getElementById('tap-stage').textContent") == "source.hook"
            page.wait_for("state.tap.id !== ''")  # the page opened its tap on the server
            assert post(port, 16) == 202
            tapped = page.wait_for(
                "document.querySelectorAll('#tap-events pre').length >= 1 && "
                "[...document.querySelectorAll('#tap-events pre')].map(p => p.textContent)"
            )
            assert all("total" not in json.loads(t)["data"] for t in tapped)  # before the step
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.evaluate("document.querySelector('#dead tbody tr').click()")
            page.screenshot(SCREENSHOT)
            assert SCREENSHOT.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            html = page.evaluate("document.documentElement.outerHTML")
            urls = page.requests()
            errors = page.console_errors()
        # the secret is nowhere: not in the page, not in any response the page got
        assert TOKEN not in html
        bodies = [get(u) for u in {u for u in urls if u.startswith(base) and "favicon" not in u}]
        assert bodies and not [b for b in bodies if TOKEN in b]
        assert not [e for e in errors if "favicon" not in e], errors
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    assert TOKEN not in err


def test_prometheus_scrapes_the_endpoint(tmp_path: Path):
    from tests.servers.prometheus import run_prometheus

    port, metrics = free_port(), free_port()
    spec = watched_integration(tmp_path, port)
    with running("run", str(spec), "--runner", "prism", "--metrics-port", str(metrics)) as proc:
        wait_listening(port, proc, 180)
        for i in range(8):
            assert post(port, i, poisoned=i in (2, 5)) == 202
        with run_prometheus([f"127.0.0.1:{metrics}"], tmp_path) as prom:

            def query(q: str) -> list[dict]:
                url = f"{prom}/api/v1/query?query={urllib.parse.quote(q)}"
                with urllib.request.urlopen(url, timeout=10) as r:
                    body = json.load(r)
                assert body["status"] == "success", body
                return body["data"]["result"]

            def value(q: str) -> float | None:
                result = query(q)
                return float(result[0]["value"][1]) if result else None

            wait_until(
                lambda: value('meshline_events_total{stage="target",outcome="delivered"}') is not None,
                60,
                "a scrape",
            )
            assert value('meshline_events_total{stage="source",name="hook",outcome="in"}') == 8
            assert value('meshline_events_total{stage="target",name="priced",outcome="delivered"}') == 6
            assert value('meshline_events_total{stage="target",name="rejects",outcome="delivered"}') == 2
            assert value('meshline_delivery_latency_seconds_count{target="priced"}') == 6
            assert value('up{job="meshline"}') == 1
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=120)
