"""The shape matrix of ``make bench``: eight ordinary integrations, each beside its baselines.

Each shape is one integration file here (shape 5's is written by :func:`twenty_triggers_yaml`)
and the same work written by hand in :mod:`bench.shapes.ref`: a plain Python loop, a naive
Beam pipeline (Python + orjson, one ``DoFn`` with tagged outputs, Beam's own writers) and,
where Beam YAML expresses it, a Beam YAML pipeline calling the same Python. All variants of a
shape must write the same records (the harness compares digests).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from bench.harness import OUT, PY, Row, Scenario, canonical_json, meshline_bin
from bench.shapes.data import events_file, xml_file

HERE = Path(__file__).resolve().parent
REF = "__import__('bench.shapes.ref').shapes.ref"
_DUMPS = "__import__('orjson').dumps"


@dataclass(frozen=True)
class Shape:
    key: str  # the name ref.ROUTES knows
    number: int
    title: str
    yaml: Callable[[], Path]
    fmt: str = "jsonl"
    xml: bool = False
    # Beam YAML: [(keep, transform or None, target)] as ref.py expressions, or None: not expressed
    branches: Callable[[], list[tuple[str, str | None, str]]] | None = None


def _file(name: str) -> Callable[[], Path]:
    return lambda: HERE / name


# -- shape 5's integration, generated from the same table as ref.S5

_S5_STEPS = {
    "total": ".data.total = (.data.amount * .data.quantity)",
    "label": '.data.label = "\\(.subject)/\\(.region)"',
    "slim": "del(.data.notes)",
    "lower": ".data.currency |= ascii_downcase",
}


def _s5_filter(i: int) -> str:
    from bench.shapes.ref import REGIONS, TYPES

    kind = i % 4
    if kind == 0:
        return f"{{exact: {{type: {TYPES[(i // 4) % 3]}, region: {REGIONS[(i // 4) % 3]}}}}}"
    if kind == 1:
        return f'{{prefix: {{subject: "customer-{i % 10}"}}}}'
    if kind == 2:
        return f"{{cesql: \"priority = {1 + i % 9} AND region <> 'apac'\"}}"
    return f"{{jq: '.data.amount > {20 * i}'}}"


def twenty_triggers_yaml() -> Path:
    from bench.shapes.ref import s5_target

    steps = list(_S5_STEPS)
    lines = [
        "# Shape 5 (written by bench/shapes/__init__.py): twenty triggers, mixed exact/prefix/cesql/jq",
        "# filters, two-step jq chains, four targets.",
        "apiVersion: meshline.dev/v1alpha1",
        "kind: Integration",
        "metadata: {name: shape-twenty-triggers}",
        "spec:",
        "  parameters: [{name: input, required: true}, {name: output, required: true}]",
        '  sources: [{name: events, type: file, config: {path: "${params.input}"}}]',
        "  transformations:",
        *[f"    - {{name: {n}, type: jq, config: {{program: '{p}'}}}}" for n, p in _S5_STEPS.items()],
        "  targets:",
        *[
            f'    - {{name: t{k}, type: file, config: {{path: "${{params.output}}/t{k}", format: jsonl}}}}'
            for k in range(4)
        ],
        '    - {name: rejects, type: file, config: {path: "${params.output}-rejects", format: jsonl}}',
        "  triggers:",
        *[
            f"    - {{name: r{i}, filters: [{_s5_filter(i)}], "
            f"steps: [{steps[i % 4]}, {steps[(i + 1) % 4]}], target: {s5_target(i)}}}"
            for i in range(20)
        ],
        "  deadLetter: rejects",
        "",
    ]
    path = OUT / "shape-twenty-triggers.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    return path


SHAPES = [
    Shape(
        "jq-object",
        1,
        "object-building jq (a dozen fields, length, add over mapped arrays, interpolation)",
        _file("s1-jq-object.yaml"),
        branches=lambda: [(f"{REF}.s1_keep", f"{REF}.s1_transform", "out")],
    ),
    Shape(
        "mapping",
        2,
        "TriggerMesh mapping (store, add, shift, delete)",
        _file("s2-mapping.yaml"),
        branches=lambda: [(f"{REF}.s2_keep", f"{REF}.s2_transform", "out")],
    ),
    Shape(
        "cesql",
        3,
        "three triggers with CESQL filters → three targets",
        _file("s3-cesql.yaml"),
        branches=lambda: [(f"{REF}.s3_{t}", None, t) for t in "abc"],
    ),
    Shape(
        "python",
        4,
        "a python step (a function in a module)",
        _file("s4-python.yaml"),
        branches=lambda: [(f"{REF}.s4_keep", f"{REF}.s4_transform", "out")],
    ),
    Shape(
        "twenty-triggers",
        5,
        "twenty triggers: exact/prefix/cesql/jq filters, two-step chains, four targets",
        twenty_triggers_yaml,
        branches=lambda: [(f"{REF}.S5[{i}][0]", f"{REF}.S5[{i}][1]", f"t{i // 5}") for i in range(20)],
    ),
    Shape("parquet", 6, "jq step → Parquet", _file("s6-parquet.yaml"), fmt="parquet"),
    Shape("avro", 7, "jq step → Avro", _file("s7-avro.yaml"), fmt="avro"),
    Shape(
        "xml",
        8,
        "raw lines → xml2json → jq (select, reshape)",
        _file("s8-xml.yaml"),
        xml=True,
        branches=lambda: [("lambda e: e is not None", None, "out")],
    ),
]


def beam_yaml(shape: Shape) -> Path | None:
    """``shape`` as a Beam YAML pipeline calling :mod:`bench.shapes.ref`, or ``None``."""
    if shape.branches is None:
        return None
    parse = f"{REF}.s8_parse(row.line)" if shape.xml else "__import__('orjson').loads(row.line)"
    t: list[str] = [
        "pipeline:",
        "  transforms:",
        "    - {type: ReadFromText, name: Read, config: {path: '{{ input }}'}}",
        "    - type: MapToFields",
        "      name: Parse",
        "      input: Read",
        "      config:",
        "        language: python",
        f'        fields: {{event: {{callable: "lambda row: {parse}"}}}}',
    ]
    by_target: dict[str, list[str]] = {}
    for i, (keep, transform, target) in enumerate(shape.branches()):
        t += [
            "    - type: Filter",
            f"      name: Keep{i}",
            "      input: Parse",
            f'      config: {{language: python, keep: {{callable: "lambda row: ({keep})(row.event)"}}}}',
        ]
        last = f"Keep{i}"
        if transform is not None:
            t += [
                "    - type: MapToFields",
                f"      name: Transform{i}",
                f"      input: Keep{i}",
                "      config:",
                "        language: python",
                f'        fields: {{event: {{callable: "lambda row: {transform}(row.event)"}}}}',
            ]
            last = f"Transform{i}"
        t += [
            "    - type: MapToFields",
            f"      name: Encode{i}",
            f"      input: {last}",
            "      config:",
            "        language: python",
            f'        fields: {{line: {{callable: "lambda row: {_DUMPS}(row.event).decode()"}}}}',
        ]
        by_target.setdefault(target, []).append(f"Encode{i}")
    for target, inputs in by_target.items():
        src = inputs[0]
        if len(inputs) > 1:  # Flatten lines: a flattened field of dicts reaches the writer as keys
            t += [f"    - {{type: Flatten, name: All{target}, input: [{', '.join(inputs)}]}}"]
            src = f"All{target}"
        t += [
            "    - type: WriteToText",
            f"      name: Write{target}",
            f"      input: {src}",
            f"      config: {{path: '{{{{ output }}}}/{target}/part'}}",
        ]
    path = OUT / f"shape-{shape.key}-beam.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(t) + "\n")
    return path


# -- reading outputs back


def _target(folder: Path, f: Path) -> bytes:
    return f.relative_to(folder).parts[0].encode() + b" "


def _row_record(row: dict) -> bytes:
    import orjson

    for k in ("data", "extensions"):
        if isinstance(row.get(k), str):
            row[k] = orjson.loads(row[k])
    return canonical_json(row)


def records(shape: Shape) -> Callable[[Path], Iterable[bytes]]:
    import orjson

    from bench.harness import _skipped

    def files(folder: Path, suffix: str) -> list[Path]:
        return [
            f
            for f in sorted(folder.rglob(f"*{suffix}"))
            if f.is_file() and not _skipped(f.relative_to(folder))
        ]

    def read(folder: Path) -> list[bytes]:
        out: list[bytes] = []
        if shape.fmt == "parquet":
            import pyarrow.parquet as pq

            for f in files(folder, ".parquet"):
                out += [_target(folder, f) + _row_record(r) for r in pq.read_table(f).to_pylist()]
        elif shape.fmt == "avro":
            import fastavro

            for f in files(folder, ".avro"):
                with f.open("rb") as fh:
                    out += [_target(folder, f) + _row_record(dict(r)) for r in fastavro.reader(fh)]
        else:
            for f in files(folder, ""):
                with f.open("rb") as fh:
                    for line in fh:
                        if line.strip():
                            d = orjson.loads(line)
                            if shape.xml:  # ids are line numbers: Beam's text source has none
                                d = {k: d.get(k) for k in ("type", "datacontenttype", "data")}
                            out.append(_target(folder, f) + canonical_json(d))
        return out

    return read


def _input(shape: Shape, n: int) -> Path:
    if shape.xml:
        return xml_file(OUT / f"shape-xml-{n}.txt", n)
    return events_file(OUT / f"shape-events-{n}.jsonl", n)


def scenario(shape: Shape, small: int, large: int) -> Scenario:
    def commands(n: int, dst: Path) -> dict[str, list[str]]:
        src = _input(shape, n)
        out = {
            "meshline": [
                meshline_bin(),
                "run",
                str(shape.yaml()),
                "--param",
                f"input={src}",
                "--param",
                f"output={dst}",
            ],
            "naive beam": [PY, "-m", "bench.shapes.ref", "beam", shape.key, str(src), str(dst)],
        }
        by = beam_yaml(shape)
        if by is not None:
            out["beam yaml"] = [
                PY,
                "-m",
                "apache_beam.yaml.main",
                f"--yaml_pipeline_file={by}",
                f'--jinja_variables={{"input": "{src}", "output": "{dst}"}}',
                "--runner=apache_beam.runners.portability.fn_api_runner.FnApiRunner",
            ]
        out["python loop"] = [PY, "-m", "bench.shapes.ref", "loop", shape.key, str(src), str(dst)]
        return out

    return Scenario(
        name=f"S{shape.number}",
        title=shape.title,
        runner="direct (FnApiRunner), one worker",
        commands=commands,
        records=records(shape),
        small=small,
        large=large,
    )


def summary(results: dict[int, dict[str, Row]]) -> list[str]:
    """The matrix as one markdown table, and the geometric means over the shapes."""
    lines = [
        "| shape | meshline ev/s/core | / naive beam | / beam yaml | / python loop |",
        "|---|---:|---:|---:|---:|",
    ]
    logs: dict[str, list[float]] = {"naive beam": [], "beam yaml": [], "python loop": []}

    def cell(rows: dict[str, Row], base: str) -> str:
        if "meshline" not in rows or base not in rows:
            return "—"
        a, b = rows["meshline"].rate, rows[base].rate
        if not (math.isfinite(a) and math.isfinite(b) and a > 0 and b > 0):  # no rate (tiny runs)
            return "—"
        r = a / b
        logs[base].append(math.log(r))
        return f"{r:.2f}x"

    for shape in SHAPES:
        rows = results.get(shape.number)
        if not rows:
            continue
        m = rows.get("meshline")
        lines.append(
            f"| {shape.number}. {shape.title} | {m.rate:,.0f} | "
            if m
            else f"| {shape.number}. {shape.title} | — | "
        )
        lines[-1] += " | ".join(cell(rows, b) for b in logs) + " |"
    geo = {b: math.exp(sum(v) / len(v)) for b, v in logs.items() if v}
    lines.append(
        "| geometric mean | | " + " | ".join(f"{geo[b]:.2f}x" if b in geo else "—" for b in logs) + " |"
    )
    return lines


__all__ = ["SHAPES", "Shape", "beam_yaml", "records", "scenario", "summary", "twenty_triggers_yaml"]
