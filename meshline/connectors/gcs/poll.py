"""``google.storage`` source, ``mode: poll``: list the bucket, emit new object generations.

A :class:`~meshline.connectors.unbounded.QueueReader`: ``pull`` lists the bucket
(at most every ``poll_interval``) and returns an event per object generation not
emitted before; ``ack`` — called from Beam's bundle finalizer, once the runner
committed the events — records them in the state (an object in the bucket or a
local file), so a restart does not emit them again. Finalizers may repeat:
recording a generation twice is harmless.

The state maps object name → generation of the objects under the prefix the
source has emitted; names no longer listed are dropped from it, so it stays as
large as the listing. An object replaced by a new generation is emitted again
(it is a new ``objectfinalize``).
"""

from __future__ import annotations

import collections
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from meshline.connectors.queues import Message

__all__ = ["FileState", "BucketState", "PollReader"]

_LOGGER = logging.getLogger(__name__)
# A listed object whose bundle was never committed is emitted again after this long.
REDELIVER_AFTER = 600.0
STATE_VERSION = 1


def _decode_state(raw: bytes) -> dict[str, str]:
    doc = orjson.loads(raw)
    objects = doc.get("objects", {}) if isinstance(doc, dict) else {}
    return {str(k): str(v) for k, v in objects.items()}


def _encode_state(bucket: str, prefix: str, objects: dict[str, str]) -> bytes:
    return orjson.dumps(
        {"version": STATE_VERSION, "bucket": bucket, "prefix": prefix, "objects": objects},
        option=orjson.OPT_SORT_KEYS,
    )


class FileState:
    """The state in a local file, replaced atomically."""

    def __init__(self, path: str, bucket: str, prefix: str):
        self._path = os.path.abspath(os.path.expanduser(path))
        self._bucket = bucket
        self._prefix = prefix

    def load(self) -> dict[str, str]:
        try:
            with open(self._path, "rb") as fh:
                return _decode_state(fh.read())
        except FileNotFoundError:
            return {}

    def save(self, objects: dict[str, str]) -> None:
        folder = os.path.dirname(self._path)
        os.makedirs(folder, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=folder, prefix=".state-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(_encode_state(self._bucket, self._prefix, objects))
        os.replace(temp, self._path)


class BucketState:
    """The state as a JSON object in the bucket itself."""

    def __init__(self, bucket: Any, name: str, prefix: str):
        self._blob = bucket.blob(name)
        self._bucket_name = bucket.name
        self._prefix = prefix

    def load(self) -> dict[str, str]:
        from google.api_core import exceptions as gexc

        try:
            return _decode_state(self._blob.download_as_bytes())
        except gexc.NotFound:
            return {}

    def save(self, objects: dict[str, str]) -> None:
        self._blob.upload_from_string(
            _encode_state(self._bucket_name, self._prefix, objects), content_type="application/json"
        )


class PollReader:
    """Lists a bucket; remembers emitted generations once their bundle is committed."""

    def __init__(
        self,
        config: Any,
        state_name: str,
        *,
        make_event: Callable[[str, dict[str, Any]], Any],
        downloader: Callable[[Any, Any], Callable[[Any], Any]] | None = None,
        client: Any = None,
    ):
        from meshline.connectors.gcs.client import storage_client

        self._client = client if client is not None else storage_client(config.project, config.endpoint_url)
        self._bucket_name = config.bucket
        self._bucket = self._client.bucket(config.bucket)
        self._prefix = config.object_name_prefix
        self._interval = float(config.poll_interval)
        self._make_event = make_event
        self._download = downloader(config, self._client) if (config.download and downloader) else None
        if config.state_path:
            self._store: FileState | BucketState = FileState(config.state_path, config.bucket, self._prefix)
            self._state_name: str | None = None
        else:
            self._store = BucketState(self._bucket, state_name, self._prefix)
            self._state_name = state_name
        self._lock = threading.Lock()
        self._done = self._store.load()
        self._listed: set[str] | None = None
        self._inflight: dict[str, float] = {}  # ack id -> when it was emitted (monotonic)
        self._pending: collections.deque[Message] = collections.deque()
        self._next_listing = 0.0

    def _list(self) -> None:
        now = time.monotonic()
        fresh: list[tuple[str, dict[str, Any]]] = []
        listed: set[str] = set()
        with self._lock:
            for blob in self._client.list_blobs(self._bucket_name, prefix=self._prefix or None):
                resource = blob._properties
                name = resource["name"]
                if name == self._state_name:
                    continue
                listed.add(name)
                generation = str(resource.get("generation", ""))
                if self._done.get(name) == generation:
                    continue
                ack_id = f"{generation}:{name}"
                emitted = self._inflight.get(ack_id)
                if emitted is not None and now - emitted < REDELIVER_AFTER:
                    continue
                self._inflight[ack_id] = now
                fresh.append((ack_id, dict(resource)))
            self._listed = listed
        fresh.sort(key=lambda item: (item[1].get("updated") or "", item[1]["name"]))
        # Element timestamps are the discovery time, not the objects' ``updated``: an object
        # uploaded just before a listing must not be late data behind the source's watermark.
        found = time.time()
        for ack_id, resource in fresh:
            event = self._make_event(self._bucket_name, resource)
            if self._download is not None:
                event = self._download(event)
            self._pending.append(Message(ack_id, event, found))

    def pull(self, max_messages: int, timeout: float) -> Sequence[Message]:
        if not self._pending:
            wait = self._next_listing - time.monotonic()
            if wait > 0:
                if wait > timeout:
                    time.sleep(timeout)
                    return []
                time.sleep(wait)
            self._next_listing = time.monotonic() + self._interval
            self._list()
        out: list[Message] = []
        while self._pending and len(out) < max_messages:
            out.append(self._pending.popleft())
        return out

    def ack(self, ack_ids: Sequence[str]) -> None:
        with self._lock:
            for ack_id in ack_ids:
                generation, _, name = ack_id.partition(":")
                self._done[name] = generation
                self._inflight.pop(ack_id, None)
            if self._listed is not None:
                keep = self._listed | {a.partition(":")[2] for a in ack_ids}
                self._done = {k: v for k, v in self._done.items() if k in keep}
            snapshot = dict(self._done)
        try:
            self._store.save(snapshot)
        except Exception as e:  # the events are delivered; the next ack saves again
            _LOGGER.warning("google.storage poll: could not save the state (%s: %s)", type(e).__name__, e)

    def close(self) -> None:
        close = getattr(self._client, "close", None)
        if close is not None:
            close()
