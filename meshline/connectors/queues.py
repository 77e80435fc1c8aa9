"""What a queue connector implements: a :class:`QueueReader` that pulls :class:`Message` s.

:class:`~meshline.connectors.unbounded.ReadFromQueue` (Apache Beam) turns a reader
into an unbounded source. These types live apart from it so that a connector's
config and declaration import neither Beam nor a client library (``meshline
validate`` and ``meshline connectors`` answer at once).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from meshline.events import CloudEvent

__all__ = ["Message", "QueueReader"]


@dataclass(frozen=True)
class Message:
    """One pulled message: an event (or the error that prevented one), an ack id, a time."""

    ack_id: str
    event: CloudEvent
    timestamp: float  # seconds since the epoch (publish time)
    error: str | None = None  # set when ``event`` is the raw message wrapped for the dead-letter target


class QueueReader(Protocol):
    """What a connector implements; created on the worker, never pickled.

    A reader whose position is not kept by the system it reads (a generator) may also
    define ``seek(claimed)``: called when a read starts or resumes, with the number of
    messages the restriction has claimed so far (the reader instance may be new).
    """

    def pull(self, max_messages: int, timeout: float) -> Sequence[Message]: ...

    def ack(self, ack_ids: Sequence[str]) -> None: ...

    def close(self) -> None: ...
