"""Every shape of the benchmark matrix writes what its hand-written reference writes.

The shapes (bench/shapes/) are ordinary integrations — object-building jq, a mapping, CESQL
triggers, a python step, twenty mixed triggers, Parquet, Avro, XML lines — and bench/shapes/ref.py
does the same work by hand. `meshline run` on each, beside the plain loop, on a few hundred
events: the harness reads both outputs back and fails on any record only one of them wrote.
"""

from __future__ import annotations

import pytest

from bench import run as bench_run
from bench.shapes import SHAPES


@pytest.mark.parametrize("number", [s.number for s in SHAPES])
def test_the_shape_writes_what_its_reference_writes(number: int, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--smoke", "--scenarios", "SHAPES", "--shapes", str(number), "--only", "meshline", "python loop"]
    status = bench_run.main(argv)
    out, err = capsys.readouterr()
    assert status == 0, err[-3000:]
    assert "meshline" in out and "python loop" in out
