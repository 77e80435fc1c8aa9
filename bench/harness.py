"""The measuring side of ``make bench``: variants as subprocesses, two sizes, medians.

For each variant and each of two input sizes, the variant runs as a subprocess
(alternating variants, ``repeat`` rounds). CPU seconds and peak RSS are the
``wait4`` rusage of each run's process (all its threads, and any child it reaped).

- steady-state events/s per core = (N_large − N_small) / (CPU_large − CPU_small),
  from the medians, so fixed start-up cost cancels out;
- start-up CPU-s = the intercept of that line at N = 0;
- wall events/s = N_large / median wall time of the large run;
- peak RSS = the largest resident set of the large runs.
"""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
PY = sys.executable

__all__ = [
    "OUT",
    "PY",
    "ROOT",
    "Row",
    "Sample",
    "Scenario",
    "machine",
    "measure",
    "meshline_bin",
    "run_once",
    "standalone",
]


@dataclass
class Sample:
    cpu: float
    wall: float
    rss_mib: float


@dataclass
class Row:
    variant: str
    rate: float  # steady-state events/s per core
    startup: float  # CPU-s at N = 0
    wall_rate: float
    rss_mib: float
    events_out: int


@dataclass
class Scenario:
    """``commands(n, dst)`` gives each variant's command for input size ``n`` writing to ``dst``."""

    name: str
    title: str
    runner: str
    commands: Callable[[int, Path], dict[str, list[str]]]
    count: Callable[[Path], int]
    small: int = 20_000
    large: int = 200_000
    notes: list[str] = field(default_factory=list)
    min_repeat: int = 3  # rounds at least, whatever --repeat says (noisy, short scenarios take more)


def meshline_bin() -> str:
    exe = Path(PY).parent / "meshline"
    return str(exe) if exe.exists() else "meshline"


def run_once(cmd: list[str], dst: Path) -> Sample:
    shutil.rmtree(dst, ignore_errors=True)
    shutil.rmtree(str(dst) + "-rejects", ignore_errors=True)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    err = proc.stderr.read()
    # wait4: this child's own CPU and peak RSS (plus any children it reaped).
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{err.decode(errors='replace')[-3000:]}")
    return Sample(usage.ru_utime + usage.ru_stime, wall, usage.ru_maxrss / 1024)


def measure(s: Scenario, repeat: int, only: list[str] | None = None) -> list[Row]:
    """Run every variant of ``s`` at both sizes, ``repeat`` alternating rounds; print and return rows."""
    repeat = max(repeat, s.min_repeat)
    variants = list(s.commands(s.small, OUT / "x"))
    if only:
        variants = [v for v in variants if v in only] or variants
    samples: dict[tuple[str, int], list[Sample]] = {}
    outputs: dict[str, int] = {}
    print(f"\n{s.name} {s.title}; N = {s.small:,} and {s.large:,}; median of {repeat}; runner: {s.runner}")
    for r in range(repeat):
        for n in (s.small, s.large):
            for v in variants:  # alternate variants so drift hits all alike
                slug = "".join(c if c.isalnum() else "-" for c in v)
                dst = OUT / f"{s.name.lower()}-out-{slug}"
                sample = run_once(s.commands(n, dst)[v], dst)
                samples.setdefault((v, n), []).append(sample)
                if n == s.large and r == 0:
                    outputs[v] = s.count(dst)
                print(
                    f"  round {r + 1} {v:<22} N={n:<8,} cpu={sample.cpu:6.2f}s wall={sample.wall:6.2f}s",
                    file=sys.stderr,
                )
    rows = []
    for v in variants:
        small = samples[(v, s.small)]
        large = samples[(v, s.large)]
        cpu_s = statistics.median(x.cpu for x in small)
        cpu_l = statistics.median(x.cpu for x in large)
        rate = (s.large - s.small) / max(cpu_l - cpu_s, 1e-9)
        rows.append(
            Row(
                variant=v,
                rate=rate,
                startup=cpu_s - s.small / rate,
                wall_rate=s.large / statistics.median(x.wall for x in large),
                rss_mib=max(x.rss_mib for x in large),
                events_out=outputs.get(v, 0),
            )
        )
    print(table(rows))
    return rows


def table(rows: list[Row]) -> str:
    lines = [
        f"{'variant':<22} {'events/s/core':>14} {'start-up CPU-s':>15} {'wall ev/s':>10} "
        f"{'peak RSS MiB':>13} {'events out':>11}"
    ]
    for r in rows:
        lines.append(
            f"{r.variant:<22} {r.rate:>14,.0f} {r.startup:>15.2f} {r.wall_rate:>10,.0f} "
            f"{r.rss_mib:>13.0f} {r.events_out:>11,}"
        )
    return "\n".join(lines)


def markdown(rows: list[Row]) -> str:
    lines = [
        "| variant | events/s per core | start-up CPU-s | wall events/s | peak RSS MiB | events out |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.variant} | {r.rate:,.0f} | {r.startup:.2f} | {r.wall_rate:,.0f} | "
            f"{r.rss_mib:.0f} | {r.events_out:,} |"
        )
    return "\n".join(lines)


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import apache_beam

    return (
        f"{os.cpu_count()} cores ({cpu}), Linux {platform.release()}, "
        f"Python {platform.python_version()}, apache-beam {apache_beam.__version__}"
    )


def standalone(
    doc: str | None,
    scenario: Callable[[int, int], Scenario | None],
    small: int,
    large: int,
    argv: list[str] | None = None,
) -> list[Row]:
    """``python -m bench.bN [--small N --large N --repeat R --only V…]``: one scenario alone."""
    import argparse

    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", type=int, default=small)
    ap.add_argument("--large", type=int, default=large)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", nargs="*", help="variants to run (default: all)")
    args = ap.parse_args(argv)
    s = scenario(args.small, args.large)
    if s is None:
        return []
    rows = measure(s, args.repeat, args.only)
    for other in rows[1:]:
        print(f"{rows[0].variant} / {other.variant} = {rows[0].rate / other.rate:.2f}x")
    return rows
