"""What an object-store target calls its objects: deterministic names, content types.

``part-[WINDOW-]DIGEST.EXT`` (``commit: bundle``, DIGEST an order-independent hash of the
``source``/``id`` pairs inside) and ``part-[WINDOW-]SSSSS-of-NNNNN[-CCC].EXT``
(``commit: window``); see :mod:`meshline.connectors.objects`.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from apache_beam.transforms.window import GlobalWindow

from meshline.connectors.formats import extension

__all__ = ["CONTENT_TYPES", "keys_digest", "object_name", "sharded_name", "static_prefix", "window_tag"]

CONTENT_TYPES = {
    "jsonl": "application/x-ndjson",
    "avro": "application/avro",
    "parquet": "application/vnd.apache.parquet",
}


def static_prefix(prefix: str) -> str:
    """The directories of a path template before its first placeholder."""
    prefix = prefix.strip("/")
    if "{" not in prefix:
        return prefix
    head = prefix[: prefix.index("{")]
    return head.rsplit("/", 1)[0] if "/" in head else ""


def object_name(directory: str, tag: str, digest: int, fmt: str) -> str:
    stem = f"part-{tag}-" if tag else "part-"
    name = f"{stem}{digest:032x}"[: len(stem) + 20] + extension(fmt)
    return f"{directory}/{name}" if directory else name


def sharded_name(directory: str, tag: str, shard: int, shards: int, chunk: int, fmt: str) -> str:
    stem = f"part-{tag}-" if tag else "part-"
    name = f"{stem}{shard:05d}-of-{shards:05d}" + (f"-{chunk:03d}" if chunk else "") + extension(fmt)
    return f"{directory}/{name}" if directory else name


def keys_digest(keys: list[tuple[Any, Any]], salt: str = "") -> int:
    """An order-independent 128-bit digest of the events' (source, id) pairs.

    ``salt`` is the writer's place in the pipeline: two writers of one target (one per
    input, see the compiler) may hold the same ids with different contents — e.g. the
    same event dead-lettered by two targets — and must not overwrite each other.
    """
    try:
        text = orjson.dumps([salt, sorted(keys)])  # the common case: strings, sorted as they are
    except TypeError:  # ids or sources of other types
        text = orjson.dumps([salt, sorted((str(s), str(i)) for s, i in keys)])
    return int.from_bytes(hashlib.blake2b(text, digest_size=16).digest(), "big")


def window_tag(window: Any) -> str:
    if isinstance(window, GlobalWindow):
        return ""
    return str(window.start.to_utc_datetime().strftime("%Y%m%dT%H%M%S"))
