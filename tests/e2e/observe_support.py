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


def backlog(families: dict[str, list[Any]], kind: str, **labels: str) -> list[float]:
    """The ``meshline_source_backlog`` values of ``kind`` whose labels include ``labels``."""
    return [
        float(s.value)
        for s in families.get("meshline_source_backlog", [])
        if s.labels.get("kind") == kind and all(s.labels.get(k) == v for k, v in labels.items())
    ]


def wait_drained(
    url: str,
    *,
    target: str,
    count: int,
    kind: str,
    rows: int = 1,
    seconds: float = 180,
    also: Callable[[], bool] = lambda: True,
    **labels: str,
) -> tuple[dict[str, list[Any]], list[float]]:
    """Scrape ``url`` until ``target`` delivered ``count`` and at least ``rows`` backlog rows of
    ``kind`` are all 0 (and ``also()``); the last scrape and every backlog value seen, in order."""
    seen: list[float] = []
    last: dict[str, list[Any]] = {}

    def drained() -> bool:
        nonlocal last
        try:
            last = scrape(url)
        except OSError:  # not listening yet
            return False
        values = backlog(last, kind, **labels)
        seen.extend(values)
        done = sample(last, "meshline_events_total", stage="target", name=target, outcome="delivered")
        return done == count and len(values) >= rows and not any(values) and also()

    wait_until(drained, seconds, f"{count} delivered to {target} and the {kind} backlog at 0")
    return last, seen
