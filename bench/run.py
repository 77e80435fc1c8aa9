"""``make bench``: Meshline beside its baselines, measured in the same run.

Scenarios (issue "Performance"):

- B1 file → exact+jq filter → jq transform → jsonl file. Baselines: a plain
  Python loop, a naive hand-written Beam pipeline (with the same logic in Python,
  and with ``jq.py``), and the same pipeline in Beam YAML.
- B5 fan-out: one source, N = 1, 10, 50 triggers with ``exact`` filters on ``type``.
- SCALE: B1 on one and two direct-runner workers, and its peak memory at 1M and 10M
  events (:mod:`bench.scale`).
- SHAPES: eight ordinary integrations (object-building jq, a mapping, CESQL triggers, a
  python step, twenty mixed triggers, Parquet, Avro, XML lines), each beside a naive Beam
  pipeline, a plain Python loop and Beam YAML where it expresses the shape
  (:mod:`bench.shapes`), summed up as geometric means.
- B9 latency: webhook → http and Kafka → Kafka, paced, on Prism and Flink ``[local]``
  (:mod:`bench.b9`), and idle CPU per runner and source kind (:mod:`bench.b9_idle`).
- B2 Kafka, B3 SQS → S3, B4 Elasticsearch, B6 Azure Data Lake, B8 RabbitMQ live in
  ``bench/bN.py``, each against its local server (started here, as in the tests) and
  with its own input sizes; ``--scenarios`` picks what runs.

How each number is measured: :mod:`bench.harness`. Runner: Meshline and the Beam
baselines use Beam's in-process FnApiRunner (``--runner direct``), one SDK worker.
Results and the machine go to ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import os
import sys
from collections.abc import Callable
from pathlib import Path

from bench.data import ensure_input
from bench.harness import (
    OUT,
    PY,
    ROOT,
    OutputMismatch,
    Row,
    Sample,
    Scenario,
    jsonl_records,
    machine,
    markdown,
    measure,
    meshline_bin,
    ratio,
    run_once,
)

__all__ = ["Row", "Sample", "Scenario", "main", "measure", "run_once"]

RESULTS = ROOT / "bench" / "RESULTS.md"
FANOUT = (1, 10, 50)


def _input(n: int) -> Path:
    return ensure_input(OUT / f"b1-{n}.jsonl", n)


def b1_command(src: Path, dst: Path, *beam_args: str) -> list[str]:
    """``meshline run bench/b1.yaml`` over ``src`` into ``dst`` (Beam options after ``--``)."""
    cmd = [meshline_bin(), "run", str(ROOT / "bench" / "b1.yaml"), "--param", f"input={src}"]
    return [*cmd, "--param", f"output={dst}", *beam_args]


def b1(small: int, large: int) -> Scenario:
    def commands(n: int, dst: Path) -> dict[str, list[str]]:
        src = _input(n)
        meshline = b1_command(src, dst)
        return {
            "meshline": meshline,
            # --ui on, with the page's requests every second (bench/watched.py)
            "meshline watched": [PY, "-m", "bench.watched", *meshline],
            "naive beam": [PY, "-m", "bench.baselines", "beam", str(src), str(dst)],
            "beam yaml": [
                PY,
                "-m",
                "apache_beam.yaml.main",
                f"--yaml_pipeline_file={ROOT / 'bench' / 'b1_beam_yaml.yaml'}",
                f'--jinja_variables={{"input": "{src}", "output": "{dst}"}}',
                "--runner=apache_beam.runners.portability.fn_api_runner.FnApiRunner",
            ],
            "naive beam + jq.py": [PY, "-m", "bench.baselines", "beam-jq", str(src), str(dst)],
            "python loop": [PY, "-m", "bench.baselines", "loop", str(src), str(dst)],
        }

    return Scenario(
        name="B1",
        title="file → exact+jq filter → jq transform → jsonl",
        runner="direct (FnApiRunner), one worker",
        commands=commands,
        records=jsonl_records,
        small=small,
        large=large,
        min_repeat=5,  # one round takes about a minute; single rounds here vary by 30%
    )


def _fanout_yaml(n_triggers: int) -> Path:
    """One file source, ``n_triggers`` triggers with an exact filter on type (one of them matches)."""
    path = OUT / f"b5-{n_triggers}.yaml"
    triggers = []
    for i in range(n_triggers):
        type_ = "com.example.order.created" if i == n_triggers - 1 else f"com.example.other.t{i}"
        triggers.append(f"    - {{name: t{i}, filters: [{{exact: {{type: {type_}}}}}], target: out}}")
    text = "\n".join(
        [
            "apiVersion: meshline.dev/v1alpha1",
            "kind: Integration",
            f"metadata: {{name: bench-b5-{n_triggers}}}",
            "spec:",
            "  parameters: [{name: input, required: true}, {name: output, required: true}]",
            '  sources: [{name: events, type: file, config: {path: "${params.input}"}}]',
            '  targets: [{name: out, type: file, config: {path: "${params.output}", format: jsonl}}]',
            "  triggers:",
            *triggers,
            "",
        ]
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def b5(small: int, large: int) -> Scenario:
    def commands(n: int, dst: Path) -> dict[str, list[str]]:
        src = _input(n)
        return {
            f"meshline N={k}": [
                meshline_bin(),
                "run",
                str(_fanout_yaml(k)),
                "--param",
                f"input={src}",
                "--param",
                f"output={dst}",
            ]
            for k in FANOUT
        }

    return Scenario(
        name="B5",
        title="fan-out: file → N triggers (exact on type; the last one matches) → jsonl",
        runner="direct (FnApiRunner), one worker",
        commands=commands,
        records=jsonl_records,
        small=small,
        large=large,
    )


# Connector scenarios: module bench.bN exposes scenario(small, large) -> Scenario | None
# (None when its server cannot be started here; it says why on stderr). Sizes are per
# scenario: a local server (moto, RabbitMQ) bounds how many events a run can take in time.
EXTERNAL = {
    "b2": (50_000, 300_000),  # Kafka → filter → jq → Kafka (the loop needs the larger N to be steady)
    "b3": (2_000, 10_000),  # SQS → transform → S3 parquet (moto)
    "b4": (20_000, 100_000),  # file → filter → Elasticsearch _bulk (OpenSearch)
    "b6": (20_000, 100_000),  # file → Azure Data Lake parquet (azurite) beside file parquet
    "b8": (5_000, 50_000),  # RabbitMQ → file and file → RabbitMQ
}


def _ratios(name: str, rows: dict[str, Row]) -> list[str]:
    def r(a: str, b: str) -> str:
        if a in rows and b in rows:
            return f"{a} / {b} = {ratio(rows[a].rate, rows[b].rate)}"
        return ""

    out = []
    if name == "B1":
        out = [r("meshline", "naive beam"), r("meshline", "beam yaml"), r("meshline", "python loop")]
        out.append(r("meshline watched", "meshline"))
        if "meshline" in rows:
            out.append(f"meshline start-up = {rows['meshline'].startup:.2f} CPU-s")
    elif name == "B5":
        out = [r(f"meshline N={k}", "meshline N=1") for k in FANOUT[1:]]
    else:
        base = next(iter(rows))
        out = [r(base, other) for other in list(rows)[1:]]
    return [x for x in out if x]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", type=int, help="smaller N of B1 and B5 (default: B1 50,000, B5 20,000)")
    ap.add_argument("--large", type=int, help="larger N of B1 and B5 (default: B1 500,000, B5 200,000)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--scenarios",
        nargs="*",
        default=["B1", "SHAPES", "SCALE", "B2", "B3", "B4", "B5", "B6", "B8", "B9"],
    )
    ap.add_argument("--shapes", nargs="*", type=int, help="SHAPES: which shapes (numbers 1-8; default: all)")
    ap.add_argument("--b9-runners", nargs="*", default=["prism", "flink"], help="B9's runners")
    ap.add_argument("--b9-rates", nargs="*", type=float, default=[50.0, 500.0], help="B9's events/s")
    ap.add_argument("--b9-seconds", type=float, default=60.0, help="B9's measured seconds per point")
    ap.add_argument("--b9-warmup", type=float, default=10.0, help="B9's paced seconds before measuring")
    ap.add_argument("--idle-seconds", type=float, default=60.0, help="B9's idle window (0: no idle CPU)")
    ap.add_argument("--only", nargs="*", help="variants to run (default: all)")
    ap.add_argument(
        "--update",
        "--append",
        action="store_true",
        help="replace only the sections measured now in bench/RESULTS.md, keep the others",
    )
    ap.add_argument(
        "--smoke",
        action="store_true",
        help="check the harness and every variant's output on tiny inputs (B1 and B5 unless "
        "--scenarios says otherwise; one round; bench/RESULTS.md is not written)",
    )
    args = ap.parse_args(argv)
    if args.smoke and "--scenarios" not in (argv if argv is not None else sys.argv[1:]):
        args.scenarios = ["B1", "B5"]
    wanted = {s.upper() for s in args.scenarios}
    tiny = (200, 400) if args.smoke else None

    scenarios: list[Scenario] = []
    if "B1" in wanted:
        # B1's runs take seconds of start-up that vary by ±0.3 CPU-s here: the larger N
        # keeps that below 10% of the difference the rate comes from.
        small, large = tiny or (args.small or 50_000, args.large or 500_000)
        scenarios.append(b1(small, large))
    for mod, sizes in EXTERNAL.items():
        if mod.upper() not in wanted:
            continue
        try:
            module = importlib.import_module(f"bench.{mod}")
        except ModuleNotFoundError:
            print(f"{mod.upper()}: not available in this build (no bench/{mod}.py)", file=sys.stderr)
            continue
        s = module.scenario(*(tiny or sizes))
        if s is not None:
            scenarios.append(s)
    if "B5" in wanted:
        small, large = tiny or (args.small or 20_000, args.large or 200_000)
        scenarios.append(b5(small, large))
    shapes: list[Scenario] = []
    if "SHAPES" in wanted:
        from bench import shapes as shape_matrix

        for shape in shape_matrix.SHAPES:
            if not args.shapes or shape.number in args.shapes:
                shapes.append(shape_matrix.scenario(shape, *(tiny or (20_000, 200_000))))

    stamp = f"Measured on {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; machine: {machine()}."
    report: list[str] = []
    base = RESULTS.read_text() if args.update and RESULTS.exists() else ""

    def write() -> None:  # after every scenario: a later one that fails keeps what was measured
        if not args.smoke:
            RESULTS.write_text(_HEADER + "\n\n" + _merge(base, "\n".join(report).strip("\n")) + "\n")

    status = 0
    for s in scenarios:
        try:
            rows = _measured(s, args)
        except OutputMismatch as e:
            print(f"FAILED: {e}", file=sys.stderr)
            report += ["", f"## {s.name} {s.title}", "", stamp, "", f"FAILED: variants' outputs differ: {e}"]
            write()
            status = 1
            continue
        ratios = _ratios(s.name, rows)
        for line in ratios:
            print(line)
        report += [
            "",
            f"## {s.name} {s.title}",
            "",
            stamp,
            f"Runner: {s.runner}; N = {s.small:,} and {s.large:,}.",
            "",
        ]
        report.append(markdown(list(rows.values())))
        report += [""] + [f"- {x}" for x in ratios + s.notes]
        write()
    if shapes:
        status = max(status, _shapes(shapes, args, stamp, report, write))
    if "SCALE" in wanted and not args.smoke:  # B1 on 1 and 2 workers, and its memory at 1M and 10M
        from bench import scale

        report += ["", scale.section().strip("\n")]
        write()
    if "B9" in wanted:
        status = max(status, _b9(args, stamp, report, write))
    if "B1" in wanted and not args.smoke:
        from bench import coder

        report += ["", "## Coder round trip of one event (encode + decode, in-process)", "", stamp, ""]
        print("\nCoder round trip of one event (encode + decode, in-process):")
        for name, micros in coder.main().items():
            print(f"  {name:<36} {micros:6.2f} µs")
            report.append(f"- {name}: {micros:.2f} µs")
    write()
    if not args.smoke:
        print(f"\nwritten to {RESULTS.relative_to(ROOT)}")
    return status


def _measured(s: Scenario, args: argparse.Namespace) -> dict[str, Row]:
    """``s``'s rows by variant: ``--repeat`` rounds, or one on a smoke run."""
    rounds = 1 if args.smoke else args.repeat
    return {r.variant: r for r in measure(s, rounds, args.only, exact_repeat=args.smoke)}


def _shapes(
    scenarios: list[Scenario],
    args: argparse.Namespace,
    stamp: str,
    report: list[str],
    write: Callable[[], None],
) -> int:
    """The shape matrix: every shape's variants measured, then one table of ratios."""
    from bench import shapes as shape_matrix

    results: dict[int, dict[str, Row]] = {}
    details: list[str] = []
    failures: list[str] = []
    for s in scenarios:
        try:
            rows = _measured(s, args)
        except OutputMismatch as e:
            print(f"FAILED: {e}", file=sys.stderr)
            failures.append(f"{s.name}: variants' outputs differ: {e}")
            continue
        results[int(s.name[1:])] = rows
        details += ["", f"### {s.name} {s.title}", "", markdown(list(rows.values()))]
    summary = shape_matrix.summary(results)
    print("\n" + "\n".join(summary))
    if args.smoke:
        return 1 if failures else 0
    first = scenarios[0]
    report += [
        "",
        "## SHAPES matrix: eight ordinary integrations beside their baselines",
        "",
        stamp,
        f"Runner: {first.runner}; N = {first.small:,} and {first.large:,}; every variant of a shape "
        "wrote the same records (digests below). Ratios are Meshline's steady-state events/s per "
        "core over the baseline's, in the same run; the geometric mean is over the shapes that "
        "have the baseline.",
        "",
        *summary,
        "",
        *[f"- FAILED: {f}" for f in failures],
        *details,
    ]
    write()
    return 1 if failures else 0


def _b9(args: argparse.Namespace, stamp: str, report: list[str], write: Callable[[], None]) -> int:
    """B9 latency, then idle CPU, into one section; smoke: Prism, 50 events/s, a few seconds, no idle."""
    from bench import b9, b9_idle
    from bench.latency import latency_markdown, latency_table

    runners, rates = (["prism"], [50.0]) if args.smoke else (args.b9_runners, args.b9_rates)
    seconds, warmup = (3.0, 1.0) if args.smoke else (args.b9_seconds, args.b9_warmup)
    idle = 0.0 if args.smoke else args.idle_seconds
    print(
        f"\nB9 latency: {', '.join(runners)} at {', '.join(f'{r:.0f}' for r in rates)} events/s, "
        f"{seconds:.0f} s each"
    )
    rows, failures = b9.run(runners, list(b9.SHAPES), rates, seconds, warmup)
    print(latency_table(rows))
    head = len(report)
    report += ["", "## B9 latency: webhook → http and Kafka → Kafka, paced (open loop); idle CPU", "", stamp]
    report += [
        f"{seconds:.0f} s measured per point after a probe and {warmup:.0f} s of paced warm-up "
        "(not measured); times in ms; delivery = sent → at the target, ack = sent → 202 / offset committed.",
        "",
        latency_markdown(rows),
        "",
    ]
    report += [f"- {r.shape}, {r.runner}, {r.rate:.0f}/s: " + "; ".join(r.notes) for r in rows]
    report += [f"- FAILED: {f}" for f in failures]
    write()
    if idle > 0:
        idle_rows, idle_failures = b9_idle.run(runners, list(b9_idle.SOURCES), idle)
        print(b9_idle.idle_markdown(idle_rows, idle))
        report += [
            "",
            "Idle CPU: every process of the run (the CLI and all below it), CPU-seconds from /proc.",
            "",
        ]
        report += [b9_idle.idle_markdown(idle_rows, idle)] + [f"- FAILED: {f}" for f in idle_failures]
        failures += idle_failures
    if args.smoke:
        del report[head:]  # smoke runs check, they do not record
    write()
    for f in failures:
        print(f"FAILED: B9 {f}", file=sys.stderr)
    return 1 if failures else 0


_HEADER = """# Benchmark results

Written by `make bench` (each section says when and where it was measured).
Steady-state events/s per core = (N_large − N_small) / (CPU_large − CPU_small) of the medians;
variants alternate within one run, so ratios are comparable even on a noisy machine; ratios
between sections measured at different times are not."""


def _sections(text: str) -> list[tuple[str, str]]:
    """``## `` sections of a results file as (first word of the heading, text)."""
    parts = text.split("\n## ")
    out = []
    for part in parts[1:] if not text.startswith("## ") else parts:
        body = part if part.startswith("## ") else "## " + part
        out.append((body[3:].split(" ", 1)[0], body.strip("\n")))
    return out


def _merge(old: str, new: str) -> str:
    """``old`` with its sections replaced by those of ``new`` of the same name; new ones at the end."""
    if not old.strip():
        return new
    fresh = dict(_sections(new))
    merged = [fresh.pop(key, body) for key, body in _sections("\n" + old)]
    return "\n\n".join([*merged, *fresh.values()])


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
