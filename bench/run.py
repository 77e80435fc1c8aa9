"""``make bench``: Meshline beside its baselines, measured in the same run.

For each variant and each of two input sizes, the variant runs as a subprocess
(alternating variants, ``--repeat`` rounds). CPU seconds and peak RSS are the
``wait4`` rusage of each run's process (all its threads, and any child it reaped).

- steady-state events/s per core = (N_large − N_small) / (CPU_large − CPU_small),
  from the medians, so fixed start-up cost cancels out;
- start-up CPU-s = the intercept of that line at N = 0;
- wall events/s = N_large / median wall time of the large run;
- peak RSS = the largest resident set of the large runs.

Runner: Meshline and the Beam baselines use Beam's in-process FnApiRunner
(``--runner direct``), one SDK worker.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.data import ensure_input

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
PY = sys.executable


@dataclass
class Sample:
    cpu: float
    wall: float
    rss_mib: float


def _meshline_bin() -> str:
    exe = Path(PY).parent / "meshline"
    return str(exe) if exe.exists() else "meshline"


def b1_commands(src: Path, dst: Path) -> dict[str, list[str]]:
    return {
        "meshline": [
            _meshline_bin(),
            "run",
            str(ROOT / "bench" / "b1.yaml"),
            "--param",
            f"input={src}",
            "--param",
            f"output={dst}",
        ],
        "naive beam": [PY, "-m", "bench.baselines", "beam", str(src), str(dst)],
        "naive beam + jq.py": [PY, "-m", "bench.baselines", "beam-jq", str(src), str(dst)],
        "python loop": [PY, "-m", "bench.baselines", "loop", str(src), str(dst)],
    }


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


def count_lines(folder: Path) -> int:
    return sum(sum(1 for _ in f.open("rb")) for f in folder.rglob("*") if f.is_file())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", type=int, default=20_000)
    ap.add_argument("--large", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", nargs="*", help="variants to run (default: all)")
    args = ap.parse_args(argv)

    inputs = {n: ensure_input(OUT / f"b1-{n}.jsonl", n) for n in (args.small, args.large)}
    size_kib = inputs[args.large].stat().st_size / args.large / 1024
    variants = list(b1_commands(inputs[args.small], OUT / "x"))
    if args.only:
        variants = [v for v in variants if v in args.only]
    samples: dict[tuple[str, int], list[Sample]] = {}
    outputs: dict[str, int] = {}
    print(
        f"B1 file → exact+jq filter → jq transform → jsonl; {size_kib:.2f} KiB events; "
        f"N = {args.small:,} and {args.large:,}; median of {args.repeat}; runner: direct (FnApiRunner)"
    )
    for r in range(args.repeat):
        for n in (args.small, args.large):
            for v in variants:  # alternate variants so drift hits all alike
                dst = OUT / f"b1-out-{v.replace(' ', '-').replace('+', '')}"
                s = run_once(b1_commands(inputs[n], dst)[v], dst)
                samples.setdefault((v, n), []).append(s)
                if n == args.large and r == 0:
                    outputs[v] = count_lines(dst)
                print(
                    f"  round {r + 1} {v:<20} N={n:<8,} cpu={s.cpu:6.2f}s wall={s.wall:6.2f}s",
                    file=sys.stderr,
                )

    print(
        f"\n{'variant':<20} {'events/s/core':>14} {'start-up CPU-s':>15} {'wall ev/s':>10} "
        f"{'peak RSS MiB':>13} {'events out':>11}"
    )
    rows = {}
    for v in variants:
        small = samples[(v, args.small)]
        large = samples[(v, args.large)]
        cpu_s = statistics.median(s.cpu for s in small)
        cpu_l = statistics.median(s.cpu for s in large)
        rate = (args.large - args.small) / max(cpu_l - cpu_s, 1e-9)
        startup = cpu_s - args.small / rate
        wall = args.large / statistics.median(s.wall for s in large)
        rss = max(s.rss_mib for s in large)
        rows[v] = rate
        print(f"{v:<20} {rate:>14,.0f} {startup:>15.2f} {wall:>10,.0f} {rss:>13.0f} {outputs.get(v, 0):>11,}")
    if "meshline" in rows and "naive beam" in rows:
        print(
            f"\nmeshline / naive beam = {rows['meshline'] / rows['naive beam']:.2f}x; "
            f"meshline / python loop = {rows['meshline'] / rows.get('python loop', float('nan')):.2f}x"
        )
    from bench import coder

    print("\nCoder round trip of one event (encode + decode, in-process):")
    for name, micros in coder.main().items():
        print(f"  {name:<36} {micros:6.2f} µs")
    counts = set(outputs.values())
    if len(counts) > 1:
        print(f"WARNING: variants wrote different numbers of events: {outputs}")
        return 1
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
