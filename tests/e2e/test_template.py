"""Flex Templates end to end, without GCP: the generated launcher runs the quickstart locally, and
builds the Dataflow job offline (local staging and template file, a localhost endpoint, no auth)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from meshline.template import write_flex_template
from tests.harness import rows_in

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "pipelines" / "quickstart.yaml"
ORDERS = ROOT / "pipelines" / "data" / "orders.jsonl"

SECRET_YAML = """\
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {name: with-secret}
spec:
  parameters:
    - {name: token, secret: true, required: true}
    - {name: output, required: true}
  sources:
    - name: in
      type: generate
      config: {count: 3, event: {type: t, source: s, data: {t: '${params.token}'}}}
  targets:
    - {name: out, type: file, config: {path: '${params.output}', format: jsonl}}
  triggers:
    - {name: t, target: out}
"""


def _launch(launcher: Path, *args: str, cwd: Path, env: dict[str, str] | None = None):
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run(
        [sys.executable, str(launcher), *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _offline_dataflow(tmp_path: Path) -> list[str]:
    """Beam options that build and stage a Dataflow job on disk instead of submitting it."""
    for d in ("staging", "tmp"):
        (tmp_path / d).mkdir(parents=True, exist_ok=True)
    return [
        "--runner=DataflowRunner",
        "--project=my-project",
        "--region=us-central1",
        "--job_name=offline-test",
        f"--temp_location={tmp_path / 'tmp'}",
        f"--staging_location={tmp_path / 'staging'}",
        f"--template_location={tmp_path / 'job.json'}",
        "--dataflow_endpoint=http://localhost:1",
        "--no_auth",
    ]


@pytest.fixture
def cache_env(tmp_path):
    return {"MESHLINE_CACHE": str(tmp_path / "cache")}


def test_generated_launcher_runs_the_quickstart_locally(tmp_path, cache_env):
    tpl = tmp_path / "tpl"
    write_flex_template(QUICKSTART, tpl)
    out = tmp_path / "out"
    work = tmp_path / "work"  # not the repository: nothing may depend on its layout
    work.mkdir()
    r = _launch(
        tpl / "launcher.py",
        "--runner=direct",
        f"--input={ORDERS}",
        f"--output={out}",
        cwd=work,
        env=cache_env,
    )
    assert r.returncode == 0, r.stderr
    big = rows_in(out / "big-orders")
    assert big and all(float(e["data"]["amount"]) > 100 and "total" in e["data"] for e in big)
    eu = rows_in(out / "eu-orders", "**/*.parquet")
    assert eu and all(row["type"] == "com.example.order.eu" for row in eu)
    rejects = rows_in(out / "dead-letters")
    assert sorted(e["meshlineerrorstage"] for e in rejects) == ["decode", "decode", "filter"], rejects
    assert "cancelled: " in r.stdout
    assert "big-orders" in r.stderr and "done in" in r.stderr  # the summary
    assert not list(work.iterdir())


def test_launcher_reports_a_missing_required_parameter_in_one_line(tmp_path, cache_env):
    source = tmp_path / "s.yaml"
    source.write_text(SECRET_YAML)
    write_flex_template(source, tmp_path / "tpl")
    r = _launch(tmp_path / "tpl" / "launcher.py", "--runner=direct", "--token=x", cwd=tmp_path, env=cache_env)
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    assert len([ln for ln in r.stderr.splitlines() if "output" in ln]) == 1
    assert "--output=VALUE" in r.stderr and "--param" not in r.stderr


def test_launcher_builds_the_dataflow_job_offline(tmp_path, cache_env):
    pytest.importorskip("apitools")  # apache-beam[gcp]
    tpl = tmp_path / "tpl"
    write_flex_template(QUICKSTART, tpl)
    setup_file = str(tpl / "src" / "setup.py")
    # as Dataflow's Python launcher runs it: parameters, options, and --setup_file from the image's env
    r = _launch(
        tpl / "launcher.py",
        "--input=gs://my-bucket/orders.jsonl",
        "--output=gs://my-bucket/out",
        *_offline_dataflow(tmp_path),
        f"--setup_file={setup_file}",
        cwd=tmp_path,
        env={**cache_env, "FLEX_TEMPLATE_PYTHON_SETUP_FILE": setup_file},
    )
    assert r.returncode == 0, r.stderr
    assert "submitted to Dataflow" in r.stderr

    job = json.loads((tmp_path / "job.json").read_text())
    assert job["name"] == "offline-test" and job["type"] == "JOB_TYPE_BATCH"
    options = job["environment"]["sdkPipelineOptions"]["options"]
    assert options["project"] == "my-project" and options["setup_file"] == setup_file
    assert "input" not in options and "output" not in options  # integration parameters are not Beam's

    from apache_beam.portability.api import beam_runner_api_pb2

    pipeline = beam_runner_api_pb2.Pipeline.FromString((tmp_path / "staging" / "pipeline.pb").read_bytes())
    names = {t.unique_name for t in pipeline.components.transforms.values()}
    assert {"Source[orders]", "Target[big-orders]"} <= {n.split("/")[0] for n in names}, sorted(names)[:20]

    # the staged source distribution installs on a worker: build a wheel from it, offline
    sdist = tmp_path / "staging" / "workflow.tar.gz"
    with tarfile.open(sdist) as tar:
        members = tar.getnames()
    assert any(m.endswith("meshline/template.py") for m in members)
    wheel_dir = tmp_path / "wheel"
    w = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(wheel_dir),
            str(sdist),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert w.returncode == 0, w.stderr
    assert list(wheel_dir.glob("meshline-*.whl"))


def test_dataflow_launch_keeps_secrets_out_of_the_job_and_uses_the_image(tmp_path, cache_env):
    pytest.importorskip("apitools")
    source = tmp_path / "s.yaml"
    source.write_text(SECRET_YAML)
    tpl = tmp_path / "tpl"
    write_flex_template(source, tpl)
    setup_file = str(tpl / "src" / "setup.py")
    args = [
        "--output=gs://my-bucket/out",
        *_offline_dataflow(tmp_path),
        f"--setup_file={setup_file}",
        "--sdk_container_image=europe-docker.pkg.dev/p/r/with-secret:1",
    ]
    env = {**cache_env, "FLEX_TEMPLATE_PYTHON_SETUP_FILE": setup_file}
    # by value: refused before anything is built (the workers could not read it)
    r = _launch(tpl / "launcher.py", "--token=hunter2-very-secret", *args, cwd=tmp_path, env=env)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "--NAME=projects/PROJECT/secrets/SECRET/versions/VERSION" in r.stderr
    assert "hunter2-very-secret" not in r.stdout + r.stderr and not (tmp_path / "job.json").exists()
    # a Secret Manager version: the launcher does not read it; the job holds the name only
    version = "projects/p/secrets/token/versions/7"
    r = _launch(tpl / "launcher.py", f"--token={version}", *args, cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "job.json").read_text()
    options = json.loads(text)["environment"]["sdkPipelineOptions"]["options"]
    # the image has meshline installed: the launcher drops the setup file the Flex launcher adds
    assert options["sdk_container_image"] == "europe-docker.pkg.dev/p/r/with-secret:1"
    assert "setup_file" not in options
    assert not (tmp_path / "staging" / "workflow.tar.gz").exists()


def test_run_on_dataflow_without_options_is_one_clear_line(meshline):
    r = meshline("run", str(QUICKSTART), "--runner", "dataflow")
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if "dataflow runner needs" in ln]
    assert len(lines) == 1 and all(o in lines[0] for o in ("--project", "--region", "--temp_location"))


def test_run_on_dataflow_builds_the_job_offline(meshline, tmp_path, cache_env):
    pytest.importorskip("apitools")
    r = meshline(
        "run",
        str(QUICKSTART),
        "--runner",
        "dataflow",
        "--param",
        "input=gs://my-bucket/orders.jsonl",
        "--",
        *_offline_dataflow(tmp_path)[1:],
        env=cache_env,
    )
    assert r.returncode == 0, r.stderr
    job = json.loads((tmp_path / "job.json").read_text())
    options = job["environment"]["sdkPipelineOptions"]["options"]
    assert options["setup_file"].startswith(str(tmp_path / "cache"))  # Meshline staged itself
    assert (tmp_path / "staging" / "workflow.tar.gz").is_file()
