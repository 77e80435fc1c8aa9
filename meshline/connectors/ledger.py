"""The written-events ledger of an object-store target: no row twice after a crash.

With ``commit: bundle`` an object is named by a digest of the events inside it,
so a replay of the same bundle overwrites the same object. A source that
redelivers after a crash (SQS, Kafka, Pub/Sub, AMQP …) may however group the
redelivered messages differently: the messages of the bundle in flight at the
crash were written (their object exists) but not acknowledged, and the next run
would write them again into an object with another name.

The ledger closes that gap. Before each object, the writer stores a small entry
next to it, ``<static prefix>/.meshline/ledger/<writer>/<ms>-<hash>.ids``: the
object's key and a 64-bit digest of each (``source``, ``id``) inside. When a
writer starts, it reads the entries written up to ``dedupe_window`` before the
newest one (the moment of the crash, however long ago) whose object exists, and
skips events it finds there: they are stored already.

- The entry is written *before* the object: a crash between the two leaves an
  entry whose object does not exist, which is ignored — nothing is lost.
- The entry of an object whose write failed (dead-lettered) is ignored likewise.
- ``<writer>`` is a digest of the integration, the target's place in the graph
  and its path template: two targets never skip each other's events.
- A running writer deletes its own entries once they are older than twice the
  window, and a starting one deletes what is older than that before the newest
  entry, so the ledger stays small. Names start with ``.``: Hive, Spark, Athena
  and pyarrow datasets skip them when reading the prefix.

The window must cover the time between writing an object and acknowledging its
messages (a bundle's length, usually seconds); the default is two minutes.
Memory: about 70 bytes per event written within the window before the crash.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import deque
from collections.abc import Iterable
from typing import Any, Protocol

import orjson

__all__ = ["Ledger", "LedgerStore", "event_digest", "ledger_root", "supports_ledger"]

_LOGGER = logging.getLogger(__name__)
_DELETE_BATCH = 1000


class LedgerStore(Protocol):
    """What a store needs beyond ``put`` for the ledger (keys relative to the store's root)."""

    def put(self, key: str, data: bytes, content_type: str) -> None: ...

    def list_keys(self, prefix: str) -> list[str]:
        """Keys starting with ``prefix``."""
        ...

    def get(self, key: str) -> bytes | None:
        """The object's bytes, or None when it does not exist."""
        ...

    def exists(self, key: str) -> bool: ...

    def delete(self, keys: list[str]) -> None: ...


def supports_ledger(store: Any) -> bool:
    return all(callable(getattr(store, m, None)) for m in ("list_keys", "get", "exists", "delete"))


def event_digest(source: Any, id_: Any) -> int:
    """A stable 64-bit digest of an event's identity (CloudEvents: ``source`` + ``id``)."""
    text = f"{source}\0{id_}".encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")


def ledger_root(static_prefix: str, writer: str) -> str:
    """``<static prefix>/.meshline/ledger/<digest of writer>/``."""
    tag = hashlib.blake2b(writer.encode(), digest_size=8).hexdigest()
    base = f"{static_prefix.strip('/')}/" if static_prefix.strip("/") else ""
    return f"{base}.meshline/ledger/{tag}/"


def _entry_time(key: str) -> int | None:
    stem = key.rsplit("/", 1)[-1]
    head = stem.split("-", 1)[0]
    return int(head) if head.isdigit() else None


class Ledger:
    """One writer's ledger in one store."""

    def __init__(self, store: LedgerStore, root: str, window: float):
        self._store = store
        self._root = root
        self._window_ms = int(window * 1000)
        self._own: deque[tuple[int, str]] = deque()  # (ms, key) of entries this writer stored

    def load(self) -> set[int]:
        """Digests of the events stored by objects written within the window before the newest entry."""
        entries = [(t, k) for k in self._store.list_keys(self._root) if (t := _entry_time(k)) is not None]
        if not entries:
            return set()
        newest = max(t for t, _ in entries)
        seen: set[int] = set()
        objects = 0
        for t, key in entries:
            if t < newest - self._window_ms:
                continue
            body = self._store.get(key)
            if body is None:
                continue
            header, _, digests = body.partition(b"\n")
            try:
                obj = orjson.loads(header)["object"]
            except (orjson.JSONDecodeError, KeyError, TypeError):
                _LOGGER.warning("ledger entry %s is unreadable; ignored", key)
                continue
            if not self._store.exists(obj):
                continue  # written before its object, which never came (crash, or a failed write)
            objects += 1
            seen.update(int.from_bytes(digests[i : i + 8], "big") for i in range(0, len(digests) - 7, 8))
        stale = [k for t, k in entries if t < newest - 2 * self._window_ms]
        self._delete(stale)
        if seen:
            _LOGGER.info(
                "ledger %s: %d event(s) in %d object(s) stored before this run are not written again",
                self._root,
                len(seen),
                objects,
            )
        return seen

    def record(self, object_key: str, digests: Iterable[int]) -> None:
        """Store the entry of ``object_key`` (call before writing the object)."""
        now = int(time.time() * 1000)
        tag = hashlib.blake2b(object_key.encode(), digest_size=6).hexdigest()
        key = f"{self._root}{now:013d}-{tag}.ids"
        body = orjson.dumps({"object": object_key}) + b"\n" + b"".join(d.to_bytes(8, "big") for d in digests)
        self._store.put(key, body, "application/octet-stream")
        self._own.append((now, key))

    def expire(self) -> None:
        """Delete this writer's entries older than twice the window, in batches (best effort)."""
        horizon = int(time.time() * 1000) - 2 * self._window_ms
        own = self._own
        expired = 0
        for t, _ in own:
            if t >= horizon:
                break
            expired += 1
        if not expired or (expired < 64 and own[0][0] >= horizon - self._window_ms):
            return  # nothing yet, or wait for a batch worth one request
        self._delete([own.popleft()[1] for _ in range(expired)])

    def _delete(self, keys: list[str]) -> None:
        for i in range(0, len(keys), _DELETE_BATCH):
            try:
                self._store.delete(keys[i : i + _DELETE_BATCH])
            except Exception as e:  # a leftover entry costs a little listing, nothing else
                _LOGGER.warning("ledger %s: deleting %d old entries failed: %s", self._root, len(keys), e)
                return
