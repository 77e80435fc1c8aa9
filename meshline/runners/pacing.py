"""``spec.execution`` with each runner's defaults: bundle size and time, checkpoints, source fill.

The defaults were chosen from measurements of a webhook → ``http`` target run at 50
events/s (``bench/latency_probe.py``; figures in ``docs/runners.md``):

- Flink: Beam's streaming pacing (bundles of up to 1000 elements or 1 s, a checkpoint
  every 2 s as Meshline set it) held delivery to p50 0.8–1.0 s / p99 1.7–1.9 s and the
  acknowledgement to p99 2.9–3.3 s. A bundle closed after 100 ms hands its outputs on at
  once, and a checkpoint every 500 ms finalizes bundles (sources acknowledge) soon after:
  delivery p50 5 ms / p99 0.4–0.7 s, acknowledgement p99 1.3–1.9 s, on a 2-core machine at
  load 10–11. At-least-once is untouched: sources still acknowledge only after the
  checkpoint that covers their outputs.
- Prism decides its own bundles and has no checkpoints: only the fill settings apply. A
  webhook bundle filled for up to 500 ms held the 202 to p99 574 ms at 50 events/s; a
  250 ms budget to p99 351–353 ms (delivery p99 29 → 39–41 ms; two runs each, quiet
  2-core machine).
- Queue sources (:mod:`meshline.connectors.unbounded`) wait up to ``fill_wait`` per pull
  and ``fill_budget`` per bundle for more messages once a bundle has emitted; the runner
  may close the bundle sooner (Flink's bundle time).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["FLINK", "PRISM", "Pacing", "pacing"]


@dataclass(frozen=True, kw_only=True)
class Pacing:
    """Resolved pacing of one run: sizes in elements, times in seconds."""

    bundle_size: int | None = None  # None: the runner's own
    bundle_time: float | None = None
    checkpoint_interval: float | None = None
    fill_wait: float = 0.1
    fill_budget: float = 0.5


FLINK = Pacing(bundle_size=1000, bundle_time=0.1, checkpoint_interval=0.5)
PRISM = Pacing(fill_budget=0.25)
_DEFAULTS = {"flink": FLINK, "prism": PRISM}


def pacing(runner: str, execution: Any = None) -> Pacing:
    """The runner's defaults, overridden by what ``execution`` (``spec.execution``) sets."""
    base = _DEFAULTS.get(runner, Pacing())
    if execution is None:
        return base
    given = {
        key: getattr(execution, key)
        for key in ("bundle_size", "bundle_time", "checkpoint_interval", "fill_wait", "fill_budget")
        if getattr(execution, key, None) is not None
    }
    return Pacing(**{**base.__dict__, **given})
