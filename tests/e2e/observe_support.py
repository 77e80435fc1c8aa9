"""What the tests of a watched run share: a webhook integration with a step that fails on a
poisoned event, posting to it, and reading the metrics endpoint as Prometheus would."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.harness import component, integration, trigger

TOKEN = "wAtch-s3cret-7e1d9c"  # the webhook's token: a secret parameter that must never be shown


def watched_integration(tmp_path: Path, port: int) -> Path:
    """Webhook → trigger ``orders`` (jq step ``price``: fails when ``qty`` is not a number) → ``priced``;
    failures to ``rejects``. The token is a secret parameter."""
    out = tmp_path / "out"
    return integration(
        tmp_path / "watched.yaml",
        name="watched",
        parameters=[{"name": "token", "secret": True, "default": TOKEN}],
        sources=[component("hook", "http", port=port, path="/orders", token="${params.token}")],
        transformations=[component("price", "jq", program=".data.total = (.data.qty * 3 + 1)")],
        targets=[
            component("priced", "file", path=str(out / "priced"), window="1s"),
            component("rejects", "file", path=str(out / "rejects"), window="1s"),
        ],
        triggers=[trigger("orders", "priced", steps=["price"], filters=[{"exact": {"type": "order"}}])],
        dead_letter="rejects",
    )


def post(port: int, i: int, poisoned: bool = False) -> int:
    """One order (a structured CloudEvent); a poisoned one has a ``qty`` the step cannot multiply."""
    event = {
        "specversion": "1.0",
        "id": f"o{i}",
        "source": "test",
        "type": "order",
        "data": {"n": i, "qty": {"bad": True} if poisoned else i},
    }
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/orders",
        data=json.dumps(event).encode(),
        headers={"content-type": "application/cloudevents+json", "authorization": f"Bearer {TOKEN}"},
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.status


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.read().decode()


def scrape(url: str) -> dict[str, list[Any]]:
    """The endpoint's families by name, parsed by the official Prometheus client's parser."""
    return {f.name: f.samples for f in text_string_to_metric_families(get(url))}


def sample(families: dict[str, list[Any]], metric: str, **labels: str) -> float | None:
    """The value of the sample named ``metric`` whose labels include ``labels``."""
    for family in families.values():
        for s in family:
            if s.name == metric and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return None


def wait_until(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {seconds}s")
        time.sleep(0.3)
