"""The Beam coder of :class:`~meshline.events.CloudEvent` elements.

Kept apart from :mod:`meshline.events` so that what needs events but runs no
pipeline (``meshline validate``, ``schema``, ``connectors`` …) does not import
Apache Beam (about 2 CPU-s). Importing this module registers the coder with
Beam's coder registry; every module that builds transforms over events imports
it (the compiler, the connectors' Beam transforms), and ``meshline.events``
hands out :class:`CloudEventCoder` on first use (PEP 562).
"""

from __future__ import annotations

import pickle
import struct

import orjson
from apache_beam import coders

from meshline.events import CloudEvent, EventBatch

__all__ = ["CloudEventCoder"]

_TAG_NONE, _TAG_JSON, _TAG_BYTES, _TAG_PICKLE, _TAG_BATCH = 0, 1, 2, 3, 4
_HEADER = struct.Struct(">IB")
_LENGTH = struct.Struct(">I")


class CloudEventCoder(coders.Coder):
    """Deterministic coder: sorted-key JSON attributes, then tagged data.

    Layout: ``u32 len(attrs_json) | u8 tag | attrs_json | payload`` where the tag
    says whether data is absent, JSON (sorted keys) or raw bytes. An event that
    JSON cannot hold (e.g. an integer beyond 64 bits from user code) falls back
    to a pickle of the whole event rather than failing the bundle. An
    :class:`EventBatch` is ``u32 count | u8 tag`` and each event's encoding after its
    ``u32`` length.
    """

    def encode(self, value: CloudEvent | EventBatch) -> bytes:
        if type(value) is EventBatch:
            parts = [_HEADER.pack(len(value), _TAG_BATCH)]
            for event in value:
                one = self.encode(event)
                parts.append(_LENGTH.pack(len(one)))
                parts.append(one)
            return b"".join(parts)
        assert isinstance(value, CloudEvent)
        try:
            return self._encode(value)
        except (TypeError, orjson.JSONEncodeError):
            return _HEADER.pack(0, _TAG_PICKLE) + pickle.dumps((value.attributes, value.data), protocol=5)

    def _encode(self, value: CloudEvent) -> bytes:
        attrs = orjson.dumps(value.attributes, option=orjson.OPT_SORT_KEYS)
        data = value.data
        if data is None:
            return _HEADER.pack(len(attrs), _TAG_NONE) + attrs
        if isinstance(data, (bytes, bytearray, memoryview)):
            return _HEADER.pack(len(attrs), _TAG_BYTES) + attrs + bytes(data)
        return _HEADER.pack(len(attrs), _TAG_JSON) + attrs + orjson.dumps(data, option=orjson.OPT_SORT_KEYS)

    def decode(self, encoded: bytes) -> CloudEvent | EventBatch:  # type: ignore[override]
        n, tag = _HEADER.unpack_from(encoded)
        start = _HEADER.size
        if tag == _TAG_BATCH:
            batch = EventBatch()
            for _ in range(n):
                (size,) = _LENGTH.unpack_from(encoded, start)
                start += _LENGTH.size
                batch.append(self.decode(encoded[start : start + size]))
                start += size
            return batch
        if tag == _TAG_PICKLE:
            return CloudEvent(*pickle.loads(encoded[start:]))
        attrs = orjson.loads(encoded[start : start + n])
        rest = encoded[start + n :]
        if tag == _TAG_NONE:
            data = None
        elif tag == _TAG_BYTES:
            data = bytes(rest)
        else:
            data = orjson.loads(rest)
        return CloudEvent(attrs, data)

    def is_deterministic(self) -> bool:
        return True

    def to_type_hint(self) -> type:
        return CloudEvent

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other)

    def __hash__(self) -> int:
        return hash(type(self))


coders.registry.register_coder(CloudEvent, CloudEventCoder)
