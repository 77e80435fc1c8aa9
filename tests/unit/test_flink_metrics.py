"""Reading Meshline's counters out of Beam's ``__metricscontainers`` accumulator as Flink's REST API
shows it (the real cluster is in tests/e2e/test_flink_metrics.py)."""

from __future__ import annotations

import base64
import json

from meshline.runners.flink_metrics import _varint64, counters_of_accumulator, flink_name


def _info(name: str | None, value: int, ptransform: str, urn: str = "beam:metric:user:sum_int64:v1") -> dict:
    labels = {"PTRANSFORM": ptransform}
    if name is not None:
        labels.update(NAME=name, NAMESPACE="meshline")
    raw = bytearray()
    v = value & (1 << 64) - 1
    while True:
        raw.append(v & 0x7F | (0x80 if v > 0x7F else 0))
        v >>= 7
        if not v:
            break
    return {
        "urn": urn,
        "type": "beam:metrics:sum_int64:v1",
        "payload": base64.b64encode(raw).decode(),
        "labels": labels,
    }


def test_counters_are_summed_over_transforms_by_their_meshline_names() -> None:
    # The shape of a real value (Flink 1.19.3, Beam 2.62.0 job server); payloads as Beam encodes them.
    value = json.dumps(
        {
            "metrics": {
                "attempted": [
                    _info("target.rejects.in", 3, "ref_AppliedPTransform_Route-in-ParDo-RouteFn-_20"),
                    _info("target.rejects.in", 1, "ref_AppliedPTransform_DecodeFailures-in-_18"),
                    _info("source.in.in", 300, "ref_AppliedPTransform_Route-in-ParDo-RouteFn-_20"),
                    _info(
                        None,
                        150,
                        "ref_AppliedPTransform_Route-in-ParDo-RouteFn-_20",
                        "beam:metric:ptransform_execution_time:total_msecs:v1",
                    ),
                ]
            }
        },
        indent=2,
    )
    assert counters_of_accumulator(value) == {"target.rejects.in": 4, "source.in.in": 300}
    assert counters_of_accumulator(value, namespace="other") == {}


def test_payloads_decode_as_beams_varints() -> None:
    assert _varint64(base64.b64decode("lgE=")) == 150  # seen in a real accumulator
    assert _varint64(base64.b64decode("Bg==")) == 6
    assert _varint64(b"\xff" * 9 + b"\x01") == -1


def test_flink_names_put_underscores_for_dots() -> None:
    assert flink_name("target.big-orders.dead_lettered") == "meshline_target_big-orders_dead_lettered"
