"""Deterministic benchmark input: ~1 KiB CloudEvents, one per line."""

from __future__ import annotations

import random
from pathlib import Path

import orjson

TYPES = ("com.example.order.created", "com.example.order.updated", "com.example.order.cancelled")


def make_event(i: int, rng: random.Random) -> dict:
    return {
        "specversion": "1.0",
        "id": f"evt-{i:09d}",
        "source": "https://shop.example.com/orders",
        "type": TYPES[0] if rng.random() < 0.7 else rng.choice(TYPES[1:]),
        "subject": f"customer-{rng.randrange(100000)}",
        "time": f"2026-11-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:00Z",
        "datacontenttype": "application/json",
        "region": rng.choice(("eu", "us", "apac")),
        "data": {
            "order_id": f"ord-{i:09d}",
            "amount": round(rng.uniform(1, 400), 2),
            "quantity": rng.randrange(1, 10),
            "currency": rng.choice(("EUR", "USD", "GBP")),
            "customer": {"name": f"Customer {i}", "email": f"c{i}@example.com", "tier": rng.choice("ABC")},
            "items": [
                {
                    "sku": f"SKU-{rng.randrange(10000):05d}",
                    "qty": rng.randrange(1, 5),
                    "price": rng.randrange(100, 9999),
                }
                for _ in range(6)
            ],
            "notes": "x" * 380,
        },
    }


def ensure_input(path: Path, n: int, seed: int = 42) -> Path:
    """Write ``n`` events to ``path`` once (reused across runs)."""
    if path.exists() and path.stat().st_size > 0:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as fh:
        for i in range(n):
            fh.write(orjson.dumps(make_event(i, rng)) + b"\n")
    tmp.rename(path)
    return path
