"""Coder round trip of a ~1 KiB CloudEvent: Meshline's coder vs Beam's pickling of the same dict."""

from __future__ import annotations

import random
import timeit

from apache_beam import coders

from bench.data import make_event
from meshline.coder import CloudEventCoder
from meshline.events import from_json_dict


def main() -> dict[str, float]:
    d = make_event(1, random.Random(1))
    event = from_json_dict(d)
    ours = CloudEventCoder()
    variants = {
        "meshline CloudEventCoder (event)": (ours, event),
        "Beam PickleCoder (dict)": (coders.PickleCoder(), d),
        "Beam FastPrimitivesCoder (dict)": (coders.FastPrimitivesCoder(), d),
    }
    results = {}
    for name, (coder, value) in variants.items():
        impl = coder.get_impl()
        n = 20000
        t = min(timeit.repeat(lambda c=impl, v=value: c.decode(c.encode(v)), number=n, repeat=5)) / n
        results[name] = t * 1e6
    return results


if __name__ == "__main__":
    for k, v in main().items():
        print(f"{k:<36} {v:6.2f} µs per encode+decode")
