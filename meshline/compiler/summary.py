"""The table printed after a run: events in / matched / delivered / dead-lettered per stage."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from meshline.spec.model import Integration

__all__ = ["collect_counters", "outputs", "render_summary", "stage_rows"]


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


def stage_rows(integration: Integration, counters: dict[str, int]) -> list[dict[str, Any]]:
    """One row per source, trigger, step and target: ``in``, ``matched``, ``out``, ``dead_lettered``.

    ``out`` is what a source decoded, a trigger or step passed on, a target delivered;
    ``dead_lettered`` what failed there (decode errors for a source).
    """

    def g(name: str) -> int:
        return counters.get(name, 0)

    rows: list[dict[str, Any]] = []
    for s in integration.sources:
        p = f"source.{s.name}."
        rows.append(
            {
                "stage": "source",
                "name": s.name,
                "in": g(p + "in") + g(p + "decode_errors"),
                "out": g(p + "in"),
                "dead_lettered": g(p + "decode_errors"),
            }
        )
    for trig in integration.triggers:
        p = f"trigger.{trig.name}."
        row = {
            "stage": "trigger",
            "name": trig.name,
            "in": g(p + "in"),
            "matched": g(p + "matched"),
            "out": g(p + "out"),
            "dead_lettered": g(p + "dead_lettered"),
        }
        if g(p + "cesql_errors"):
            row["cesql_errors"] = g(p + "cesql_errors")
        rows.append(row)
    for st in integration.transformations:
        p = f"step.{st.name}."
        rows.append(
            {
                "stage": "step",
                "name": st.name,
                "in": g(p + "in"),
                "out": g(p + "out"),
                "dead_lettered": g(p + "failed"),
            }
        )
    for t in integration.targets:
        p = f"target.{t.name}."
        rows.append(
            {
                "stage": "target",
                "name": t.name,
                "in": g(p + "in"),
                "out": g(p + "delivered"),
                "dead_lettered": g(p + "dead_lettered"),
            }
        )
    return rows


def render_summary(integration: Integration, counters: dict[str, int]) -> str:
    """A fixed-width table, one row per source, trigger, step and target."""

    def g(name: str) -> int:
        return counters.get(name, 0)

    rows: list[tuple[str, str, str, str, str, str]] = []
    for r in stage_rows(integration, counters):
        matched = ""
        if r["stage"] == "trigger":
            note = r.get("cesql_errors")
            matched = str(r["matched"]) + (f" ({note} cesql errors)" if note else "")
        rows.append((r["stage"], r["name"], str(r["in"]), matched, str(r["out"]), str(r["dead_lettered"])))
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


# --------------------------------------------------------------------------- where outputs go


def _first(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return str(value[0]) if value else ""
    return "" if value is None else str(value)


def _prefixed(scheme: str, bucket: Any, prefix: Any) -> str:
    return f"{scheme}://{bucket}/{str(prefix or '').lstrip('/')}"


_WHERE: dict[str, Any] = {
    "file": lambda c: _first(c.get("path")),
    "log": lambda c: "standard output",
    "http": lambda c: _first(c.get("url")),
    "aws.s3": lambda c: _prefixed("s3", c.get("bucket"), c.get("prefix")),
    "aws.sqs": lambda c: _first(c.get("queue_url")),
    "google.storage": lambda c: _prefixed("gs", c.get("bucket"), c.get("prefix")),
    "azure.datalake": lambda c: (
        f"{_first(c.get('account_url')) or 'account of the connection string'}"
        f" container {c.get('container')}, prefix {c.get('prefix') or '/'}"
    ),
    "kafka": lambda c: f"kafka://{_first(c.get('bootstrap_servers')).split(',')[0]}/{c.get('topic')}",
    "elasticsearch": lambda c: f"{_first(c.get('hosts')).rstrip('/')}/{c.get('index')}",
    "snowflake": lambda c: (
        f"snowflake {c.get('account')}: {c.get('database')}.{c.get('schema')}.{c.get('table')}"
    ),
    "amqp": lambda c: (
        f"{_first(c.get('url'))} exchange {c.get('exchange')!r}, routing key {c.get('routing_key')!r}"
    ),
}


def outputs(integration: Integration) -> list[dict[str, str]]:
    """Where each target writes (``target``, ``type``, ``where``), secrets masked: for ``meshline run``."""
    from meshline.secrets import mask, mask_url

    out = []
    for t in integration.targets:
        describe = _WHERE.get(t.type)
        try:
            where = describe(dict(t.config or {})) if describe else ""
        except Exception:
            where = ""
        out.append(
            {"target": t.name, "type": t.type, "where": mask(mask_url(integration.redactor.redact(where)))}
        )
    return out
