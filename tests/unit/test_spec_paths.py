"""Relative paths resolve against the integration file's directory; --param and env values against the cwd.

And a ``file`` source whose path matches nothing stops ``meshline run`` with a located error,
unless ``allow_empty: true``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import apache_beam as beam
import pytest

from meshline.cli import main
from meshline.compiler import build_pipeline
from meshline.compiler.summary import collect_counters
from meshline.connectors.formats import read_rows
from meshline.runners import in_process_runner
from meshline.spec import load_file

SPEC = """\
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {name: rel}
spec:
  parameters:
    - {name: input, default: data/in.jsonl}
    - {name: output, default: out}
  sources:
    - name: in
      type: file
      config:
        path: ${params.input}
  transformations:
    - name: shape
      type: xslt
      config: {stylesheet: xsl/shape.xsl}
  targets:
    - {name: out, type: file, config: {path: "${params.output}/{yyyy}"}}
    - {name: literal, type: file, config: {path: lit/dir}}
    - {name: home, type: file, config: {path: ~/meshline-out}}
    - {name: url, type: file, config: {path: "gs://bucket/x"}}
    - {name: absolute, type: file, config: {path: /var/tmp/x}}
    - {name: env, type: file, config: {path: "${env.MESHLINE_TEST_DIR}/y"}}
  triggers:
    - {name: t, target: out}
    - {name: u, target: literal}
    - {name: v, target: home}
    - {name: w, target: url}
    - {name: x, target: absolute}
    - {name: y, target: env}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "data").mkdir(parents=True)
    (root / "data" / "in.jsonl").write_text(
        "".join(
            json.dumps({"specversion": "1.0", "id": str(i), "source": "s", "type": "t"}) + "\n"
            for i in range(3)
        )
    )
    (root / "rel.yaml").write_text(SPEC)
    return root


def _configs(integration) -> dict[str, dict]:
    return {
        d.name: d.config for d in (*integration.sources, *integration.targets, *integration.transformations)
    }


def test_paths_written_in_the_file_are_read_from_its_directory(project: Path, tmp_path: Path, monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    (integration,) = load_file("../project/rel.yaml", env={"MESHLINE_TEST_DIR": "envdir"}).integrations
    c = _configs(integration)
    assert c["in"]["path"] == str(project / "data" / "in.jsonl")  # a parameter's default: in the file
    assert c["out"]["path"] == f"{project}/out/{{yyyy}}"
    assert c["literal"]["path"] == str(project / "lit" / "dir")
    assert c["shape"]["stylesheet"] == str(project / "xsl" / "shape.xsl")
    assert c["home"]["path"] == os.path.expanduser("~/meshline-out")
    assert c["url"]["path"] == "gs://bucket/x"
    assert c["absolute"]["path"] == "/var/tmp/x"
    assert c["env"]["path"] == str(elsewhere / "envdir" / "y")  # from the environment: the cwd


def test_param_values_are_read_from_the_current_directory(project: Path, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (integration,) = load_file(
        project / "rel.yaml", params={"input": "mine.jsonl", "output": "o"}, env={"MESHLINE_TEST_DIR": "/e"}
    ).integrations
    c = _configs(integration)
    assert c["in"]["path"] == str(tmp_path / "mine.jsonl")
    assert c["out"]["path"] == f"{tmp_path}/o/{{yyyy}}"
    assert c["literal"]["path"] == str(project / "lit" / "dir")  # still the file's


def test_inline_content_is_not_taken_for_a_path(project: Path):
    text = (
        (project / "rel.yaml")
        .read_text()
        .replace(
            "{stylesheet: xsl/shape.xsl}",
            '{stylesheet: "<xsl:stylesheet version=\\"1.0\\" xmlns:xsl=\\"http://www.w3.org/1999/XSL/Transform\\"/>"}',
        )
    )
    (project / "inline.yaml").write_text(text)
    (integration,) = load_file(project / "inline.yaml", env={"MESHLINE_TEST_DIR": "/e"}).integrations
    assert _configs(integration)["shape"]["stylesheet"].startswith("<xsl:stylesheet")


RUN = """\
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {name: run}
spec:
  sources: [{name: in, type: file, config: {path: data/in.jsonl}}]
  targets: [{name: out, type: file, config: {path: out}}]
  triggers: [{name: t, target: out}]
"""


def test_a_run_from_another_directory_reads_and_writes_next_to_the_file(
    project: Path, tmp_path: Path, monkeypatch
):
    (project / "run.yaml").write_text(RUN)
    monkeypatch.chdir(tmp_path)
    (integration,) = load_file(project / "run.yaml").integrations
    p = beam.Pipeline(runner=in_process_runner())
    build_pipeline(integration, p)
    result = p.run()
    result.wait_until_finish()
    assert collect_counters(result)["target.out.delivered"] == 3
    rows = [r for f in (project / "out").glob("*.jsonl") for r in read_rows("jsonl", f.read_bytes())]
    assert sorted(r["id"] for r in rows) == ["0", "1", "2"]
    assert not (tmp_path / "out").exists()


def test_a_source_path_that_matches_nothing_stops_the_run_at_its_key(project: Path, capsys):
    spec = project / "run.yaml"
    spec.write_text(RUN.replace("data/in.jsonl", "data/nothing-*.jsonl"))
    assert main(["run", str(spec)]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after the no-dead-letter warning
    assert err == (
        f"{spec}:5:45: spec.sources[0].config.path: no file matches "
        f"'{project}/data/nothing-*.jsonl' (set allow_empty: true if there may be none)"
    )
    assert not (project / "out").exists()


def test_allow_empty_reads_nothing_without_an_error(project: Path):
    spec = project / "run.yaml"
    spec.write_text(RUN.replace("path: data/in.jsonl", "path: data/nothing-*.jsonl, allow_empty: true"))
    (integration,) = load_file(spec).integrations
    from meshline.compiler.preflight import preflight

    assert preflight(integration) == []
    p = beam.Pipeline(runner=in_process_runner())
    build_pipeline(integration, p)
    result = p.run()
    result.wait_until_finish()
    assert collect_counters(result).get("source.in.in", 0) == 0


def test_the_workers_refuse_an_empty_match_too(tmp_path: Path):
    """On a runner where the launcher could not look (remote filesystems), the source fails."""
    from meshline.connectors.file import FileSourceConfig, ReadFromFile

    p = beam.Pipeline(runner=in_process_runner())
    _ = p | ReadFromFile(FileSourceConfig(path=str(tmp_path / "none-*.jsonl")), "in")
    with pytest.raises(Exception, match="no file matches"):
        p.run().wait_until_finish()
