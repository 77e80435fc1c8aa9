"""``make soak``: Kafka → Kafka at 200 events/s for 30 minutes, on Prism and on Flink ``[local]``.

Run: ``make soak [SOAK_MINUTES=30] [SOAK_ARGS="--runners prism --rate 200"]`` or
``.venv/bin/python -m bench.soak --minutes M``. Results go to ``bench/SOAK.md`` (one section
per runner, replaced when that runner is measured again).

The load is B9's (:class:`bench.b9.KafkaLoad`): one-partition topics on a local broker, an
open-loop producer of ``{"i": I}`` records, a consumer of the output topic and a reader of
the integration's committed offset. Every 30 s (``--sample``) the soak records the resident
set (RSS, from ``/proc/PID/statm``) of every process of the run — the CLI and everything
below it — the consumer lag (records produced − the committed offset) and the counts in
(produced) and out (arrived at the output topic, distinct). When the sender is done the run
gets up to 3 minutes to deliver and commit the rest, then it is stopped with Ctrl-C.

It passes when every record arrived and was committed; it reports the RSS growth after
the first 5 minutes: (last total − total at 5 min) / total at 5 min (runs shorter than 15
minutes take the sample at a third of the run instead, and say so).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.b9 import SETTLE_TIMEOUT, B9Failure, KafkaLoad, _alive, kafka_broker, meshline_run
from bench.harness import OUT, ROOT, machine
from bench.latency import loadavg, name, rss_mib, summary, tree

__all__ = ["Sample", "main", "rss_growth", "soak"]

SOAK = ROOT / "bench" / "SOAK.md"


@dataclass
class Sample:
    seconds: float
    rss: dict[str, float]  # MiB per process, named "comm pid"
    lag: int
    sent: int
    arrived: int
    load: str

    @property
    def total(self) -> float:
        return sum(self.rss.values())


@dataclass
class Soak:
    runner: str
    minutes: float
    rate: float
    samples: list[Sample] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    failure: str = ""


def _at(samples: list[Sample], minute: float) -> Sample:
    """The first sample at or after ``minute`` (the last one if none)."""
    return next((s for s in samples if s.seconds >= minute * 60), samples[-1])


def rss_growth(samples: list[Sample], minutes: float) -> tuple[float, float]:
    """(growth in % of the last sample's total RSS over the baseline's, baseline minute).

    The baseline is the first sample at or after 5 minutes; in runs shorter than 15 minutes,
    the first at or after a third of the run."""
    base = _at(samples, 5.0 if minutes >= 15 else minutes / 3)
    last = samples[-1]
    return (100 * (last.total - base.total) / base.total if base.total else 0.0), base.seconds / 60


def _sample(load: KafkaLoad, pid: int, start: float) -> Sample:
    pids = tree(pid)
    rss = {f"{name(p)} {p}": mib for p, mib in rss_mib(pids).items()}
    produced = max(load.offsets.values(), default=-1) + 1
    return Sample(
        seconds=time.monotonic() - start,
        rss=rss,
        lag=max(0, produced - load.commits[-1][1]),
        sent=len(load.sent),
        arrived=len(load.first),
        load=loadavg(),
    )


def soak(bootstrap: str, runner: str, minutes: float, rate: float, every: float) -> Soak:
    result = Soak(runner, minutes, rate)
    load = KafkaLoad(bootstrap)
    folder = OUT / "soak"
    log = folder / f"soak-{runner}.log"
    try:
        with meshline_run(load.spec(folder, f"soak-{runner}"), runner, log) as proc:
            load.probe(proc, log)
            stop = threading.Event()
            sender = threading.Thread(target=load.send, args=(rate, round(minutes * 60 * rate), 0, stop))
            start = time.monotonic()
            sender.start()
            try:
                while sender.is_alive():
                    sender.join(timeout=every - (time.monotonic() - start) % every)
                    _alive(proc, log)
                    if not sender.is_alive() and time.monotonic() - start < len(result.samples) * every + 5:
                        break  # the sender just ended on a sample's time: the last sample comes below
                    s = _sample(load, proc.pid, start)
                    result.samples.append(s)
                    print(_line(s), file=sys.stderr)
                deadline = time.monotonic() + SETTLE_TIMEOUT
                while not load.settled() and time.monotonic() < deadline:
                    _alive(proc, log)
                    time.sleep(0.5)
                result.samples.append(_sample(load, proc.pid, start))  # the end: everything in (or not)
                print(_line(result.samples[-1]), file=sys.stderr)
            finally:
                stop.set()
                sender.join()
    except B9Failure as e:
        result.failure = str(e)
    finally:
        load.close()
    if not result.failure:
        try:
            load.check(f"soak {runner}", result.notes)
        except B9Failure as e:
            result.failure = str(e)
    ids = [i for i in load.sent if i >= 0 and i in load.first]
    if ids:
        d = summary([load.first[i] - load.sent[i] for i in ids])
        result.notes.append(f"delivery p50/p95/p99 {d[0] * 1000:.0f}/{d[1] * 1000:.0f}/{d[2] * 1000:.0f} ms")
    return result


def _line(s: Sample) -> str:
    return (
        f"  {s.seconds / 60:6.1f} min  RSS {s.total:7.0f} MiB  lag {s.lag:6,}  in {s.sent:8,}  "
        f"out {s.arrived:8,}  load {s.load}"
    )


def markdown(r: Soak, stamp: str) -> str:
    lines = [
        f"## {r.runner}: Kafka → Kafka at {r.rate:.0f} events/s for {r.minutes:g} minutes",
        "",
        stamp,
        "",
    ]
    if r.samples:
        growth, base = rss_growth(r.samples, r.minutes)
        verdict = "FAILED: " + r.failure if r.failure else "nothing lost, nothing left unacknowledged"
        lines += [
            f"- {verdict}",
            f"- RSS growth after minute {base:.1f}: {growth:+.1f}% "
            f"({_at(r.samples, base).total:.0f} → {r.samples[-1].total:.0f} MiB)",
            *[f"- {n}" for n in r.notes],
            "",
            "| minute | RSS MiB, all processes | by process | lag | in | out | load average |",
            "|---:|---:|---|---:|---:|---:|---|",
        ]
        for k, s in enumerate(r.samples):
            minute = f"{s.seconds / 60:.1f}" + (" (end)" if k == len(r.samples) - 1 else "")
            by = ", ".join(f"{k} {v:.0f}" for k, v in sorted(s.rss.items(), key=lambda kv: -kv[1]))
            lines.append(
                f"| {minute} | {s.total:.0f} | {by} | {s.lag:,} | {s.sent:,} | {s.arrived:,} | {s.load} |"
            )
    else:
        lines.append(f"- FAILED: {r.failure}")
    return "\n".join(lines)


_HEADER = """# Soak results

Written by `make soak` (bench/soak.py): Kafka → Kafka, paced, on each runner; RSS of every
process of the run every 30 s, consumer lag, counts in and out; at the end every record must
have arrived and been committed. Each section says when and where it was measured."""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--rate", type=float, default=200.0, help="events/s")
    ap.add_argument("--runners", nargs="*", default=["prism", "flink"], choices=["prism", "flink"])
    ap.add_argument("--sample", type=float, default=30.0, help="seconds between two samples")
    ap.add_argument("--output", type=Path, default=SOAK)
    args = ap.parse_args(argv)
    from bench.run import _merge

    bootstrap = kafka_broker()
    status = 0
    for runner in args.runners:
        print(f"soak: {runner}, {args.rate:.0f} events/s for {args.minutes:g} minutes", file=sys.stderr)
        r = soak(bootstrap, runner, args.minutes, args.rate, args.sample)
        stamp = f"Measured on {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; machine: {machine()}."
        text = markdown(r, stamp)
        print(text)
        old = args.output.read_text() if args.output.exists() else ""
        merged = _merge(old[old.find("\n## ") + 1 :] if "\n## " in old else "", text)
        args.output.write_text(_HEADER + "\n\n" + merged + "\n")
        if r.failure:
            print(f"FAILED: soak {runner}: {r.failure}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
