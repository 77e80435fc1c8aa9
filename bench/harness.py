"""The measuring side of ``make bench``: variants as subprocesses, two sizes, medians.

For each variant and each of two input sizes, the variant runs as a subprocess
(alternating variants, ``repeat`` rounds). CPU seconds and peak RSS are the
``wait4`` rusage of each run's process (all its threads, and any child it reaped),
taken by a small launcher (:data:`_LAUNCHER`) that starts the variant and reports
its rusage back. Linux carries a process's peak RSS across ``fork`` and ``exec``, so
a variant forked straight from this (large) process would report this process's
peak as its own: ``/bin/true`` under a 300 MiB parent showed 311 MiB. Forked from the
launcher (a ``python -S`` of about 5 MiB), it reports its own peak, or the
launcher's few MiB when it is smaller than that.

- steady-state events/s per core = (N_large − N_small) / (CPU_large − CPU_small),
  from the medians, so fixed start-up cost cancels out;
- start-up CPU-s = the intercept of that line at N = 0;
- wall events/s = N_large / median wall time of the large run;
- peak RSS = the largest resident set of the large runs.

Every variant's output of the first large run is read back (``Scenario.records``: one
canonical ``bytes`` per written record, e.g. JSON with sorted keys) and reduced to a
count and a digest of the sorted records. Variants that do the same work must write the
same records (``Scenario.same_output``; by default all of a scenario's variants): a
difference fails the run with both digests and a record only one of them wrote, so a
variant that skips work cannot look fast.
"""

from __future__ import annotations

import hashlib
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
PY = sys.executable
# CPU-s between a scenario's two sizes below which the difference is noise (no rate)
RESOLUTION = 0.05

__all__ = [
    "OUT",
    "PY",
    "ROOT",
    "Output",
    "OutputMismatch",
    "Row",
    "Sample",
    "Scenario",
    "machine",
    "measure",
    "meshline_bin",
    "canonical_json",
    "jsonl_records",
    "parquet_records",
    "run_once",
    "spawn_measured",
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
    digest: str = ""


@dataclass(frozen=True)
class Output:
    """What a variant wrote, read back: how many records, and a digest of them in sorted order."""

    count: int
    digest: str
    records: frozenset[bytes]

    @classmethod
    def of(cls, records: Iterable[bytes]) -> Output:
        items = sorted(records)
        h = hashlib.sha256()
        for r in items:
            h.update(len(r).to_bytes(8, "big"))
            h.update(r)
        return cls(len(items), h.hexdigest()[:16], frozenset(items))


class OutputMismatch(SystemExit):
    """Variants that should have written the same records did not."""


@dataclass
class Scenario:
    """``commands(n, dst)`` gives each variant's command for input size ``n`` writing to ``dst``;
    ``records(dst)`` reads back what the variant writing to ``dst`` wrote, one canonical
    ``bytes`` per record."""

    name: str
    title: str
    runner: str
    commands: Callable[[int, Path], dict[str, list[str]]]
    records: Callable[[Path], Iterable[bytes]]
    small: int = 20_000
    large: int = 200_000
    notes: list[str] = field(default_factory=list)
    min_repeat: int = 3  # rounds at least, whatever --repeat says (noisy, short scenarios take more)
    # groups of variants that must write the same records; None: all variants form one group
    same_output: tuple[tuple[str, ...], ...] | None = None


def _skipped(path: Path) -> bool:
    """Files a variant leaves beside its output that are not output: temporary parts, ledgers."""
    return any(part.startswith(".") for part in path.parts) or ".meshline-tmp" in str(path)


def canonical(value: object) -> object:
    """A JSON value with every integral float as an int: JSON has one number type, and writers
    differ only in how they spell it (Python's ``1176.0``, jq's ``1176``)."""
    if type(value) is float:
        return int(value) if value.is_integer() and abs(value) < 2**53 else value
    if type(value) is dict:
        return {k: canonical(v) for k, v in value.items()}
    if type(value) is list:
        return [canonical(v) for v in value]
    return value


def canonical_json(value: object) -> bytes:
    """``value`` as JSON with sorted keys and canonical numbers (:func:`canonical`)."""
    import orjson

    return orjson.dumps(canonical(value), option=orjson.OPT_SORT_KEYS, default=str)


def jsonl_records(folder: Path) -> list[bytes]:
    """Each JSON line of every file under ``folder``, in canonical form (:func:`canonical_json`)."""
    import orjson

    out: list[bytes] = []
    for f in sorted(folder.rglob("*")):
        if not f.is_file() or _skipped(f.relative_to(folder)):
            continue
        with f.open("rb") as fh:
            out.extend(canonical_json(orjson.loads(line)) for line in fh if line.strip())
    return out


def parquet_records(raw: bytes, columns: Iterable[str] | None = None) -> list[bytes]:
    """The rows of one Parquet file as JSON with sorted keys (``data`` parsed when it is JSON text)."""
    import io

    import orjson
    import pyarrow.parquet as pq

    keep = None if columns is None else tuple(columns)
    out = []
    for row in pq.read_table(io.BytesIO(raw)).to_pylist():
        if keep is not None:
            row = {k: row.get(k) for k in keep}
        if isinstance(row.get("data"), str):
            try:
                row["data"] = orjson.loads(row["data"])
            except orjson.JSONDecodeError:
                pass
        out.append(canonical_json(row))
    return out


def meshline_bin() -> str:
    exe = Path(PY).parent / "meshline"
    return str(exe) if exe.exists() else "meshline"


# Runs argv[2:] as its child and writes the child's exit status, CPU seconds and peak RSS
# (KiB) to the file descriptor argv[1]; its own exit status is the child's.
_LAUNCHER = (
    "import os,sys\n"
    "fd=int(sys.argv[1])\n"
    "pid=os.fork()\n"
    "if pid==0:\n"
    "    os.close(fd)\n"
    "    try: os.execvp(sys.argv[2],sys.argv[2:])\n"
    "    except OSError as e: os.write(2,('%s: %s\\n' % (sys.argv[2],e)).encode())\n"
    "    finally: os._exit(127)\n"
    "_,status,u=os.wait4(pid,0)\n"
    "code=os.waitstatus_to_exitcode(status)\n"
    "os.write(fd,('%d %r %d' % (code,u.ru_utime+u.ru_stime,u.ru_maxrss)).encode())\n"
    "sys.exit(code if 0<=code<256 else 1)\n"
)


def spawn_measured(cmd: list[str], cwd: Path | str = ROOT) -> tuple[int, float, float, float, bytes]:
    """Run ``cmd``; its exit status, CPU seconds, peak RSS (MiB), wall seconds and stderr.

    CPU and peak RSS are the command's own (its threads and the children it reaped),
    measured from the launcher so that this process's size does not leak into them.
    """
    read_end, write_end = os.pipe()
    start = time.perf_counter()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-S", "-c", _LAUNCHER, str(write_end), *cmd],
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            pass_fds=(write_end,),
        )
    finally:
        os.close(write_end)
    with os.fdopen(read_end, "rb") as report:
        assert proc.stderr is not None
        err = proc.stderr.read()
        proc.wait()
        fields = report.read().split()
    wall = time.perf_counter() - start
    if len(fields) != 3:  # the launcher itself failed
        return proc.returncode or 1, 0.0, 0.0, wall, err
    code, cpu, rss_kib = int(fields[0]), float(fields[1]), int(fields[2])
    return code, cpu, rss_kib / 1024, wall, err


def run_once(cmd: list[str], dst: Path) -> Sample:
    shutil.rmtree(dst, ignore_errors=True)
    shutil.rmtree(str(dst) + "-rejects", ignore_errors=True)
    code, cpu, rss_mib, wall, err = spawn_measured(cmd)
    if code != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{err.decode(errors='replace')[-3000:]}")
    return Sample(cpu, wall, rss_mib)


def check_outputs(s: Scenario, outputs: dict[str, Output]) -> None:
    """Raise :class:`OutputMismatch` when variants of one ``same_output`` group wrote different records."""
    groups = s.same_output if s.same_output is not None else (tuple(outputs),)
    problems = []
    for group in groups:
        present = [v for v in group if v in outputs]
        for v in present[1:]:
            a, b = outputs[present[0]], outputs[v]
            if a.digest == b.digest:
                continue
            only_a, only_b = sorted(a.records - b.records), sorted(b.records - a.records)
            examples = _difference(present[0], only_a, v, only_b)
            problems.append(
                f"{s.name}: {present[0]!r} wrote {a.count:,} records (digest {a.digest}), "
                f"{v!r} wrote {b.count:,} (digest {b.digest}); "
                + ("; ".join(examples) or "the same set of records, different multiplicities")
            )
    if problems:
        raise OutputMismatch("\n".join(problems))


def _difference(name_a: str, only_a: list[bytes], name_b: str, only_b: list[bytes]) -> list[str]:
    """A record only one side wrote, around where it first differs from the other side's."""
    if only_a and only_b:
        a, b = only_a[0], only_b[0]
        i = next((k for k in range(min(len(a), len(b))) if a[k] != b[k]), min(len(a), len(b)))
        lo = max(0, i - 80)
        return [f"{name_a!r} wrote …{a[lo : i + 160]!r}…", f"where {name_b!r} wrote …{b[lo : i + 160]!r}…"]
    return [f"only {n!r} wrote {r[0][:400]!r}" for n, r in ((name_a, only_a), (name_b, only_b)) if r]


def measure(
    s: Scenario, repeat: int, only: list[str] | None = None, *, exact_repeat: bool = False
) -> list[Row]:
    """Run every variant of ``s`` at both sizes, ``repeat`` alternating rounds; print and return rows.

    ``exact_repeat``: run ``repeat`` rounds even below the scenario's ``min_repeat`` (smoke runs).
    """
    repeat = repeat if exact_repeat else max(repeat, s.min_repeat)
    variants = list(s.commands(s.small, OUT / "x"))
    if only:
        variants = [v for v in variants if v in only] or variants
    samples: dict[tuple[str, int], list[Sample]] = {}
    outputs: dict[str, Output] = {}
    print(f"\n{s.name} {s.title}; N = {s.small:,} and {s.large:,}; median of {repeat}; runner: {s.runner}")
    for r in range(repeat):
        for n in (s.small, s.large):
            for v in variants:  # alternate variants so drift hits all alike
                slug = "".join(c if c.isalnum() else "-" for c in v)
                dst = OUT / f"{s.name.lower()}-out-{slug}"
                sample = run_once(s.commands(n, dst)[v], dst)
                samples.setdefault((v, n), []).append(sample)
                if n == s.large and r == 0:
                    outputs[v] = Output.of(s.records(dst))
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
        # Below RESOLUTION CPU-s between the two sizes (smoke runs: a few hundred events) the
        # difference is noise, not a cost per event: no rate, shown as "—".
        rate = (s.large - s.small) / (cpu_l - cpu_s) if cpu_l - cpu_s >= RESOLUTION else math.nan
        rows.append(
            Row(
                variant=v,
                rate=rate,
                startup=cpu_s - s.small / rate if rate == rate else cpu_s,
                wall_rate=s.large / statistics.median(x.wall for x in large),
                rss_mib=max(x.rss_mib for x in large),
                events_out=outputs[v].count,
                digest=outputs[v].digest,
            )
        )
    print(table(rows))
    check_outputs(s, outputs)
    return rows


def _num(rate: float) -> str:
    return "—" if math.isnan(rate) else f"{rate:,.0f}"


def ratio(a: float, b: float) -> str:
    """``a / b`` as ``1.23x``; "—" when either has no rate (see :data:`RESOLUTION`)."""
    return "—" if math.isnan(a) or math.isnan(b) or b == 0 else f"{a / b:.2f}x"


def table(rows: list[Row]) -> str:
    lines = [
        f"{'variant':<22} {'events/s/core':>14} {'start-up CPU-s':>15} {'wall ev/s':>10} "
        f"{'peak RSS MiB':>13} {'events out':>11} {'output digest':>16}"
    ]
    for r in rows:
        lines.append(
            f"{r.variant:<22} {_num(r.rate):>14} {r.startup:>15.2f} {r.wall_rate:>10,.0f} "
            f"{r.rss_mib:>13.0f} {r.events_out:>11,} {r.digest:>16}"
        )
    return "\n".join(lines)


def markdown(rows: list[Row]) -> str:
    lines = [
        "| variant | events/s per core | start-up CPU-s | wall events/s | peak RSS MiB | events out "
        "| output digest |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.variant} | {_num(r.rate)} | {r.startup:.2f} | {r.wall_rate:,.0f} | "
            f"{r.rss_mib:.0f} | {r.events_out:,} | `{r.digest}` |"
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
        print(f"{rows[0].variant} / {other.variant} = {ratio(rows[0].rate, other.rate)}")
    return rows
