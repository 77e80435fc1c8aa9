"""The shape matrix's inputs: ~1.3 KiB CloudEvents (B1's, plus two extensions), and XML lines."""

from __future__ import annotations

import os
import random
from pathlib import Path

import orjson

from bench.data import make_event

TENANTS = ("acme", "globex", "initech", "umbrella")


def shape_event(i: int, rng: random.Random) -> dict:
    """B1's event with an integer extension ``priority``, a string one ``tenant`` and longer notes."""
    e = make_event(i, rng)
    e["priority"] = rng.randrange(1, 10)
    e["tenant"] = rng.choice(TENANTS)
    e["data"]["notes"] = "x" * 560
    e["data"]["tags"] = [rng.choice(("gift", "express", "fragile", "bulk")) for _ in range(3)]
    return e


def xml_line(i: int, rng: random.Random) -> str:
    """One order as an XML document on one line (~1.2 KiB)."""
    status = "paid" if rng.random() < 0.7 else rng.choice(("open", "cancelled"))
    items = "".join(
        f'<item sku="SKU-{rng.randrange(10000):05d}" qty="{rng.randrange(1, 5)}">'
        f"{rng.randrange(100, 9999)}</item>"
        for _ in range(6)
    )
    return (
        f'<order id="ord-{i:09d}" status="{status}" currency="{rng.choice(("EUR", "USD", "GBP"))}">'
        f'<customer tier="{rng.choice("ABC")}">Customer {i}</customer>{items}'
        f"<total>{rng.uniform(1, 400):.2f}</total><notes>{'x' * 700}</notes></order>"
    )


def _write(path: Path, n: int, line) -> Path:  # type: ignore[no-untyped-def]
    if path.exists() and path.stat().st_size > 0:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(7)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")  # tests on several workers may race
    with tmp.open("wb") as fh:
        for i in range(n):
            fh.write(line(i, rng) + b"\n")
    tmp.rename(path)
    return path


def events_file(path: Path, n: int) -> Path:
    return _write(path, n, lambda i, rng: orjson.dumps(shape_event(i, rng)))


def xml_file(path: Path, n: int) -> Path:
    return _write(path, n, lambda i, rng: xml_line(i, rng).encode())
