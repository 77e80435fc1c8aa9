"""A ``python`` step's ``function: module:callable`` is found next to the integration file.

``validate`` checks that the module imports and has the callable (a located line with a
hint), calling nothing; ``run`` and ``test`` import it from there in the step's process.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import apache_beam as beam
import pytest

from meshline.compiler import build_pipeline
from meshline.connectors.formats import read_rows
from meshline.errors import SpecError
from meshline.runners import in_process_runner
from meshline.spec import load_file

PRICING = """\
import pathlib
pathlib.Path(__file__).with_name("imported").touch()

def add_vat(event):
    pathlib.Path(__file__).with_name("called").touch()
    event.data["vat"] = round(float(event.data["amount"]) * 0.2, 2)
    return event

RATE = 0.2
"""

SPEC = """\
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {{name: vat}}
spec:
  sources: [{{name: in, type: file, config: {{path: in.jsonl}}}}]
  transformations:
    - name: vat
      type: python
      config: {{function: "{function}"}}
  targets: [{{name: out, type: file, config: {{path: out}}}}]
  triggers: [{{name: t, steps: [vat], target: out}}]
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "pricing.py").write_text(PRICING)
    (root / "in.jsonl").write_text(
        json.dumps({"specversion": "1.0", "id": "1", "source": "s", "type": "t", "data": {"amount": "10"}})
        + "\n"
    )
    monkeypatch.chdir(tmp_path)  # not the file's directory
    yield root
    sys.modules.pop("pricing", None)


def _write(project: Path, function: str) -> Path:
    spec = project / "vat.yaml"
    spec.write_text(SPEC.format(function=function))
    return spec


def test_the_module_next_to_the_file_is_used_by_a_run(project: Path):
    (integration,) = load_file(_write(project, "pricing:add_vat")).integrations
    p = beam.Pipeline(runner=in_process_runner())
    build_pipeline(integration, p)
    p.run().wait_until_finish()
    rows = [r for f in (project / "out").glob("*.jsonl") for r in read_rows("jsonl", f.read_bytes())]
    assert [r["data"] for r in rows] == [{"amount": "10", "vat": 2.0}]


def test_validate_imports_the_module_and_calls_nothing(project: Path):
    load_file(_write(project, "pricing:add_vat"), strict=False)
    assert (project / "imported").exists()
    assert not (project / "called").exists()
    assert "pricing" not in sys.modules  # forgotten again: the next file finds its own


@pytest.mark.parametrize(
    ("function", "said"),
    [
        ("pricing:add_vatt", "'pricing' has no attribute 'add_vatt'; did you mean 'add_vat'?"),
        ("pricing:RATE", "'pricing.RATE' is not callable"),
        (
            "prices:add_vat",
            "no module named 'prices' (looked in the integration file's directory, then on the Python "
            "path; put prices.py next to the file or install it)",
        ),
    ],
)
def test_validate_says_what_is_missing_at_the_function_key(project: Path, function: str, said: str):
    spec = _write(project, function)
    with pytest.raises(SpecError) as e:
        load_file(spec, strict=False)
    (problem,) = e.value.problems
    assert str(problem) == f"{spec}:9:26: spec.transformations[0].config.function: {said}"
    assert not (project / "called").exists()


def test_a_module_that_raises_on_import_is_reported(project: Path):
    (project / "broken.py").write_text("raise RuntimeError('no database here')\n")
    with pytest.raises(SpecError) as e:
        load_file(_write(project, "broken:handle"), strict=False)
    assert "importing 'broken' raised RuntimeError: no database here" in str(e.value)
