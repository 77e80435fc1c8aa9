"""``python -m bench.scale``: B1 on one core and on two, and B1's memory as its input grows.

B1 (bench/b1.yaml: file → exact+jq filter → jq step → jsonl) runs with one worker —
``meshline run``'s default: Beam's FnApiRunner with its worker in the ``meshline`` process —
and with ``-- --direct_num_workers=2`` (two worker processes sharing the file's byte ranges),
alternating, at 1M and at 10M events, ``--repeat`` rounds:

- **cores**: wall events/s = N / the wall seconds of the whole command (start-up and exit
  included), the median of the rounds; two workers / one worker at each N. The start-up
  (about 2 s of imports and building, the same for both) weighs on 1M, not on 10M;
- **memory**: the peak of each variant at each N, and 10M / 1M.

How memory is counted. One worker: the peak resident set of the ``meshline`` process, the
``wait4`` rusage :func:`bench.harness.spawn_measured` takes (exact). Several processes: the
rusage gives the largest of them, not their sum, so a thread here also reads ``/proc`` every
0.2 s for every process of the run and keeps the largest sum of their proportional set sizes
(PSS: a page shared by k processes counts 1/k; the workers are forked from the run's process
and share what it imported) seen at once; the rusage peak of the largest process is shown
beside it.

Each run's records are read back in the first round (count and an order-independent digest
of the canonical records): one worker and two must write the same ones. "Others' CPU" is the
CPU time the machine spent outside the measured run while it ran, in % of all cores: other
people's benchmarks on a shared machine, and the kernel writing the output back to disk. A
run beside a busy core cannot use two.

:func:`section` measures and returns the markdown (in the style of bench/RESULTS.md) without
writing any file; ``python -m bench.scale`` prints it. Inputs are made by
:func:`bench.data.ensure_input` under ``bench/out/scale/``; those this run made are deleted at
the end (``--keep-inputs`` keeps them; 10M events are about 10 GB, their output 5 GB).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import shutil
import statistics
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from bench.data import ensure_input
from bench.harness import OUT, ROOT, canonical_json, machine, run_once
from bench.latency import loadavg, tree

__all__ = ["Measured", "TreeMemory", "main", "records_digest", "section"]

SCALE = OUT / "scale"
SIZES = (1_000_000, 10_000_000)
VARIANTS = {"1 worker": [], "2 workers": ["--", "--direct_num_workers=2"]}
_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Measured:
    variant: str
    n: int
    wall: float
    cpu: float  # CPU-s of the run: its processes and those they reaped
    rss_mib: float  # rusage: the largest process's peak
    pss_mib: float  # the largest sum of the run's processes' PSS seen at once
    rss_sum_mib: float  # the largest sum of their RSS seen at once
    others: float  # CPU-s the machine spent outside the run, while it ran
    records: tuple[int, str] = (0, "")

    @property
    def rate(self) -> float:
        return self.n / self.wall

    @property
    def others_pct(self) -> float:
        return 100 * self.others / (self.wall * (os.cpu_count() or 1))


@dataclass
class TreeMemory:
    """Samples the memory of this process's children (and theirs) until stopped: the run's."""

    interval: float = 0.2
    peak_pss_kib: int = 0
    peak_rss_kib: int = 0
    processes: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="bench-memory", daemon=True)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join()

    def _sample(self) -> None:
        me = os.getpid()
        while not self._done.wait(self.interval):
            pids = [p for p in tree(me) if p != me]
            pss = rss = 0
            for pid in pids:
                kib = _rollup(pid)
                if kib["Pss"]:
                    self.processes.add(pid)
                    pss += kib["Pss"]
                    rss += kib["Rss"]
            self.peak_pss_kib = max(self.peak_pss_kib, pss)
            self.peak_rss_kib = max(self.peak_rss_kib, rss)


def _rollup(pid: int) -> dict[str, int]:
    """The process's ``Rss`` and ``Pss`` in KiB (``/proc/PID/smaps_rollup``; 0 when it is gone)."""
    found = {"Rss": 0, "Pss": 0}
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as f:
            for line in f:
                key = line.split(":", 1)[0]
                if key in found:
                    found[key] = int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return found


def _busy_seconds() -> float:
    """CPU-s the whole machine has spent busy since boot (``/proc/stat``: all but idle and iowait)."""
    with open("/proc/stat", encoding="ascii") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / _TICKS


def records_digest(records: Iterable[bytes]) -> tuple[int, str]:
    """How many records and an order-independent digest of them (no sort: 10M records fit nowhere)."""
    count, total = 0, 0
    for r in records:
        count += 1
        total = (total + int.from_bytes(hashlib.sha256(r).digest(), "big")) % (1 << 256)
    return count, f"{total:064x}"[:16]


def _jsonl_records(folder: Path) -> Iterable[bytes]:
    """Each JSON line under ``folder`` in canonical form, one at a time (as bench.harness.jsonl_records)."""
    import orjson

    for f in sorted(folder.rglob("*")):
        if f.is_file() and not any(part.startswith(".") for part in f.relative_to(folder).parts):
            with f.open("rb") as fh:
                for line in fh:
                    if line.strip():
                        yield canonical_json(orjson.loads(line))


def _input(n: int, made: list[Path]) -> Path:
    path = SCALE / f"b1-{n}.jsonl"
    if not path.exists():
        made.append(path)
        print(f"  making {path.relative_to(ROOT)} ({n:,} events) …", file=sys.stderr)
    return ensure_input(path, n)


def measure_run(variant: str, n: int, src: Path, *, check: bool) -> Measured:
    """One B1 run of ``variant`` over ``src`` (``n`` events)."""
    dst = SCALE / f"out-{variant.replace(' ', '-')}"
    from bench.run import b1_command

    cmd = b1_command(src, dst, *VARIANTS[variant])
    busy = _busy_seconds()
    with TreeMemory() as memory:
        sample = run_once(cmd, dst)
    others = max(0.0, _busy_seconds() - busy - sample.cpu)
    run = Measured(
        variant,
        n,
        sample.wall,
        sample.cpu,
        sample.rss_mib,
        memory.peak_pss_kib / 1024,
        memory.peak_rss_kib / 1024,
        others,
    )
    if check:
        run.records = records_digest(_jsonl_records(dst))
    shutil.rmtree(dst, ignore_errors=True)
    shutil.rmtree(str(dst) + "-rejects", ignore_errors=True)
    print(
        f"  {variant:<9} N={n:<11,} wall={run.wall:7.2f}s {run.rate:>9,.0f} ev/s cpu={run.cpu:7.2f}s "
        f"rss={run.rss_mib:4.0f} pss={run.pss_mib:4.0f} ({run.rss_sum_mib:4.0f}) MiB "
        f"others={run.others_pct:3.0f}% load {loadavg()}",
        file=sys.stderr,
    )
    return run


def _same_records(runs: list[Measured]) -> str:
    digests = {r.records for r in runs if r.records[0]}
    if len(digests) > 1:
        raise SystemExit(
            "bench.scale: 1 and 2 workers wrote different records: " + ", ".join(map(str, digests))
        )
    (count, digest) = digests.pop() if digests else (0, "")
    return f"{count:,} records, digest `{digest}`"


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "—"


def section(sizes: tuple[int, ...] = SIZES, repeat: int = 2, keep_inputs: bool = False) -> str:
    """Measure, and return the markdown section (nothing is written)."""
    made: list[Path] = []
    stamp = f"Measured on {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; machine: {machine()}."
    load_before = loadavg()
    runs: dict[tuple[str, int], list[Measured]] = {}
    same: dict[int, str] = {}
    try:
        inputs = {n: _input(n, made) for n in sizes}
        for r in range(repeat):
            for n in sizes:
                print(f"\nround {r + 1} of {repeat}, N = {n:,}", file=sys.stderr)
                for v in VARIANTS:
                    runs.setdefault((v, n), []).append(measure_run(v, n, inputs[n], check=r == 0))
                if r == 0:
                    same[n] = _same_records([runs[(v, n)][0] for v in VARIANTS])
    finally:
        if not keep_inputs:
            for path in made:
                path.unlink(missing_ok=True)
    return _markdown(stamp, load_before, sizes, repeat, runs, same)


def _peak(v: str, runs: list[Measured]) -> float:
    """The run's peak: one worker, its process's RSS; several, the largest sum of the processes' PSS."""
    return max(r.rss_mib for r in runs) if v == "1 worker" else max(r.pss_mib for r in runs)


def _markdown(
    stamp: str,
    load_before: str,
    sizes: tuple[int, ...],
    repeat: int,
    runs: dict[tuple[str, int], list[Measured]],
    same: dict[int, str],
) -> str:
    one, two = VARIANTS
    lines = [
        "## Scale: B1 on one core and on two, and its memory at 1M and 10M events",
        "",
        stamp,
        f"Load average before: {load_before}. Runner: direct (FnApiRunner): `1 worker` is `meshline run`'s "
        "default (the worker in the `meshline` process); `2 workers` is `-- --direct_num_workers=2` (two "
        "worker processes, forked, sharing the file's byte ranges).",
        f"{repeat} alternating rounds; wall events/s = N / wall seconds of the whole command, start-up "
        "included; wall s and CPU-s: medians. Peak RSS of the largest process: rusage, exact (with one "
        "worker, the run's peak). All processes: the largest sums seen at once, sampled every 0.2 s, of "
        "their PSS (a page shared by k processes counts 1/k: the workers share what the run imported; "
        "libraries are shared with other processes on the machine too, so this is a lower bound) and of "
        "their RSS (shared pages counted in every process: an upper bound). Others' CPU: what the machine "
        "spent outside the run, in % of all its cores, per round.",
        "",
        "| variant | N | wall events/s | wall s | CPU-s | peak RSS MiB, largest process "
        "| peak PSS (RSS) MiB, all processes | others' CPU |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n in sizes:
        for v in VARIANTS:
            rs = runs[(v, n)]
            lines.append(
                f"| {v} | {n:,} | {statistics.median(r.rate for r in rs):,.0f} | "
                f"{statistics.median(r.wall for r in rs):.1f} | {statistics.median(r.cpu for r in rs):.1f} | "
                f"{max(r.rss_mib for r in rs):.0f} | {max(r.pss_mib for r in rs):.0f} "
                f"({max(r.rss_sum_mib for r in rs):.0f}) | "
                + " ".join(f"{r.others_pct:.0f}%" for r in rs)
                + " |"
            )
    lines.append("")
    for n in sizes:
        a, b = runs[(one, n)], runs[(two, n)]
        median = _ratio(statistics.median(r.rate for r in b), statistics.median(r.rate for r in a))
        rounds = ", ".join(_ratio(y.rate, x.rate) for x, y in zip(a, b, strict=True))
        lines.append(
            f"- N = {n:,}: 2 workers / 1 worker = {median} (wall events/s; round by round: {rounds})"
        )
    small, large = min(sizes), max(sizes)
    for v in VARIANTS:
        pa, pb = _peak(v, runs[(v, small)]), _peak(v, runs[(v, large)])
        what = "peak RSS" if v == one else "peak PSS of all processes"
        lines.append(
            f"- {v}: {what} at {large:,} / at {small:,} = {_ratio(pb, pa)} ({pb:.0f} / {pa:.0f} MiB)"
        )
    for n in sizes:
        lines.append(f"- N = {n:,}: both variants wrote the same records: {same.get(n, '—')}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="B1's N (1000000 10000000)")
    ap.add_argument("--repeat", type=int, default=2, help="alternating rounds (2)")
    ap.add_argument("--keep-inputs", action="store_true", help="keep the inputs this run made")
    args = ap.parse_args(argv)
    print(section(tuple(args.sizes), args.repeat, args.keep_inputs))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
