"""The table printed after a run: events in / matched / delivered / dead-lettered per stage."""

from __future__ import annotations

from typing import Any

__all__ = ["collect_counters", "render_summary"]


def collect_counters(result: Any) -> dict[str, int]:
    """Meshline's Beam counters of a finished run, by name (committed values when available)."""
    from apache_beam.metrics.metric import MetricsFilter

    out: dict[str, int] = {}
    try:
        counters = result.metrics().query(MetricsFilter().with_namespace("meshline"))["counters"]
    except Exception:
        return out
    for c in counters:
        value = c.committed if c.committed is not None else c.attempted
        out[c.key.metric.name] = out.get(c.key.metric.name, 0) + int(value or 0)
    return out


def render_summary(integration: Any, counters: dict[str, int]) -> str:
    """A fixed-width table, one row per source, trigger, step and target."""

    def g(name: str) -> int:
        return counters.get(name, 0)

    rows: list[tuple[str, str, str, str, str, str]] = []
    for s in integration.sources:
        p = f"source.{s.name}."
        rows.append(
            (
                "source",
                s.name,
                str(g(p + "in") + g(p + "decode_errors")),
                "",
                str(g(p + "in")),
                str(g(p + "decode_errors")),
            )
        )
    for t in integration.triggers:
        p = f"trigger.{t.name}."
        note = g(p + "cesql_errors")
        matched = str(g(p + "matched")) + (f" ({note} cesql errors)" if note else "")
        rows.append(
            ("trigger", t.name, str(g(p + "in")), matched, str(g(p + "out")), str(g(p + "dead_lettered")))
        )
    for st in integration.transformations:
        p = f"step.{st.name}."
        rows.append(("step", st.name, str(g(p + "in")), "", str(g(p + "out")), str(g(p + "failed"))))
    for t in integration.targets:
        p = f"target.{t.name}."
        rows.append(
            ("target", t.name, str(g(p + "in")), "", str(g(p + "delivered")), str(g(p + "dead_lettered")))
        )
    header = ("stage", "name", "in", "matched", "out/delivered", "dead-lettered")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header, *rows]]
    for s in integration.sources:
        # Requests a webhook (``http`` source) refused, by kind: source.NAME.http.KIND
        p = f"source.{s.name}.http."
        refused = sorted((k[len(p) :], n) for k, n in counters.items() if k.startswith(p) and n)
        if refused:
            lines.append(f"source {s.name}: " + ", ".join(f"{n} {kind}" for kind, n in refused))
    dropped = g("deadletter.dropped")
    if dropped:
        lines.append(f"{dropped} failed event(s) had no dead-letter target (counted and logged)")
    return "\n".join(lines)
