"""The seam every object-store target fills: :class:`ObjectStore` (and, to stream, :class:`ObjectSink`).

A target (``file``, ``aws.s3``, ``azure.datalake``, ``google.storage``) supplies a store;
:class:`meshline.connectors.objects.WriteObjects` does the rest, the same way for every store.
"""

from __future__ import annotations

import io
import logging
from typing import Any, Protocol

__all__ = ["ObjectSink", "ObjectStore", "open_sink"]

_LOGGER = logging.getLogger(__name__)


class ObjectStore(Protocol):
    """One bucket/container; created on the worker (``make_store()`` in ``setup``), never pickled."""

    def put(self, key: str, data: bytes, content_type: str) -> None:
        """Store one whole object at ``key`` (replacing it); raise TransientError when worth retrying."""
        ...

    def close(self) -> None: ...


class ObjectSink(Protocol):
    """Where one object's bytes go while it is filled (a store may offer ``sink(directory)``).

    Stores without ``sink`` get :class:`_MemorySink` (the object in memory, ``put`` whole).
    A store that can stream (local files) writes as events arrive, so a large object
    never sits in memory: touching tens of MiB of fresh memory per object cost about
    1.5 µs of page faults per event.
    """

    fh: Any  # binary, writable; the format writer writes here

    def commit(self, key: str, content_type: str) -> None:
        """Store the object at ``key`` (``fh`` is complete); raise TransientError when worth retrying."""
        ...

    def read(self) -> bytes:
        """The object's bytes (to dead-letter its events when it cannot be stored)."""
        ...

    def discard(self) -> None:
        """Drop what is left of an object that was not stored."""
        ...


class _MemorySink:
    def __init__(self, store: ObjectStore):
        self.fh = io.BytesIO()
        self._store = store

    def commit(self, key: str, content_type: str) -> None:
        self._store.put(key, self.fh.getvalue(), content_type)

    def read(self) -> bytes:
        return self.fh.getvalue()

    def discard(self) -> None:
        return None


def open_sink(store: ObjectStore, directory: str) -> ObjectSink:
    """The store's own sink for an object under ``directory``, else one in memory."""
    sink = getattr(store, "sink", None)
    if callable(sink):
        try:
            return sink(directory)
        except Exception as e:  # put() will meet the same problem: retried, then dead-lettered
            _LOGGER.debug("cannot open a sink under %r (%s); buffering in memory", directory, e)
    return _MemorySink(store)
