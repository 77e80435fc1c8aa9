"""Flex Template metadata and files, the launcher's arguments, and the dataflow runner's checks (no GCP)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from meshline.errors import MeshlineError, RunnerError, SpecError
from meshline.launch import split_args
from meshline.runners import RunnerSettings, make_runner
from meshline.runners.dataflow import (
    dataflow_runner,
    missing_options,
    runtime_pins,
    worker_package,
    write_worker_package,
)
from meshline.spec import load_file
from meshline.template import (
    template_metadata,
    templates_dir,
    write_flex_template,
)

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "pipelines" / "quickstart.yaml"
OPTIONS = ["--project=my-project", "--region=us-central1", "--temp_location=gs://my-bucket/tmp"]

PARAMS_YAML = """\
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {name: orders-to-files, description: Orders from a queue land in files}
spec:
  parameters:
    - {name: queue_url, description: SQS queue URL, required: true}
    - {name: es_password, description: index password, secret: true, default: projects/p/secrets/e/versions/4}
    - {name: api_token, secret: true, required: true}
    - {name: batch, description: events per file, default: 50}
    - {name: ratio, default: 0.5}
    - {name: dry_run_mode, default: false}
    - {name: prefix, description: object prefix, required: true, default: orders/}
    - {name: home, default: "${env.HOME}"}
  sources:
    - {name: in, type: generate, config: {count: 1, event: {data: {q: '${params.queue_url}'}}}}
  targets:
    - {name: out, type: file, config: {path: '${params.prefix}', format: jsonl}}
  triggers:
    - {name: t, target: out}
"""

STREAMING_YAML = """\
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {name: from-pubsub}
spec:
  parameters:
    - {name: subscription, required: true}
  sources:
    - {name: in, type: google.pubsub, config: {project: my-project, subscription: '${params.subscription}'}}
  targets:
    - {name: out, type: log}
  triggers:
    - {name: t, target: out}
"""


@pytest.fixture
def TemplateMetadata():
    types = pytest.importorskip("google.cloud.dataflow_v1beta3.types")
    return types.TemplateMetadata


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MESHLINE_CACHE", str(tmp_path / "cache"))


def _write(tmp_path: Path, text: str, name: str = "i.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _parameters(integration_file: Path) -> list:
    return list(load_file(integration_file, env={}, strict=False).integrations[0].parameters)


# --------------------------------------------------------------------------- metadata.json


def test_quickstart_metadata_parses_as_template_metadata(tmp_path, TemplateMetadata):
    result = write_flex_template(QUICKSTART, tmp_path / "tpl")
    text = (tmp_path / "tpl" / "metadata.json").read_text()
    metadata = TemplateMetadata.from_json(text, ignore_unknown_fields=False)
    declared = _parameters(QUICKSTART)
    assert metadata.name == "quickstart" == result.integration
    assert metadata.description.startswith("Orders from a JSONL file")
    assert [p.name for p in metadata.parameters] == [p.name for p in declared] == ["input", "output"]
    for got, want in zip(metadata.parameters, declared):
        assert got.label and got.help_text.startswith(want.description[:1].upper() + want.description[1:])
        assert got.is_optional  # both have defaults
        assert got.default_value == want.default
        assert got.param_type.name == "TEXT"
    assert not metadata.streaming


def test_required_secret_and_typed_parameters(tmp_path, TemplateMetadata):
    source = _write(tmp_path, PARAMS_YAML)
    result = write_flex_template(source, tmp_path / "tpl")
    text = (tmp_path / "tpl" / "metadata.json").read_text()
    metadata = TemplateMetadata.from_json(text, ignore_unknown_fields=False)
    by_name = {p.name: p for p in metadata.parameters}
    assert list(by_name) == [p.name for p in _parameters(source)]

    queue = by_name["queue_url"]
    assert not queue.is_optional and queue.label == "Queue URL" and queue.help_text == "SQS queue URL."
    assert not by_name["api_token"].is_optional
    assert by_name["prefix"].is_optional  # required, but it has a default
    assert by_name["prefix"].default_value == "orders/"

    for secret in ("es_password", "api_token"):
        p = by_name[secret]
        assert p.param_type.name == "TEXT"
        assert dict(p.custom_metadata) == {"secret": "true"}
        assert (
            "Secret Manager" in p.help_text
            and "projects/PROJECT/secrets/NAME/versions/VERSION" in p.help_text
        )
        assert not p.default_value
    assert by_name["es_password"].is_optional  # a default, though never written
    shown = text + (tmp_path / "tpl" / "README.md").read_text() + "\n".join(result.commands)
    assert "projects/p/secrets/e/" not in shown  # a default of a secret is never written

    # a secret written in the file would travel with the template: refused, nothing written
    leaky = _write(
        tmp_path, PARAMS_YAML.replace("projects/p/secrets/e/versions/4", "hunter2-default"), "l.yaml"
    )
    with pytest.raises(SpecError) as e:
        write_flex_template(leaky, tmp_path / "tpl2")
    assert "parameter es_password has a default value" in str(e.value) and "hunter2-default" not in str(
        e.value
    )
    assert not (tmp_path / "tpl2").exists()

    batch, ratio, flag = by_name["batch"], by_name["ratio"], by_name["dry_run_mode"]
    assert (batch.param_type.name, batch.default_value) == ("NUMBER", "50")
    assert re.match(batch.regexes[0], "50") and not re.match(batch.regexes[0], "fifty")
    assert ratio.param_type.name == "NUMBER" and re.match(ratio.regexes[0], "0.25")
    assert (flag.param_type.name, flag.default_value) == ("BOOLEAN", "false")
    assert re.match(flag.regexes[0], "true") and not re.match(flag.regexes[0], "yes")
    assert not by_name["home"].default_value  # ${env.HOME} is not resolved on this machine
    assert by_name["ratio"].help_text  # no description: still a help text (the API requires one)

    assert any("env" in w and "HOME" in w for w in result.warnings)
    run = result.commands[2]
    assert "--parameters queue_url=QUEUE_URL" in run
    assert "--parameters api_token=projects/PROJECT/secrets/api_token/versions/latest" in run


def test_streaming_integration_is_marked_streaming_at_least_once(tmp_path, TemplateMetadata):
    integration = load_file(_write(tmp_path, STREAMING_YAML), env={}, strict=False).integrations[0]
    metadata = template_metadata(integration)
    parsed = TemplateMetadata.from_json(json.dumps(metadata), ignore_unknown_fields=False)
    assert parsed.streaming and parsed.supports_at_least_once
    assert parsed.default_streaming_mode == "AT_LEAST_ONCE"


def test_parameter_named_like_a_beam_option_is_an_error(tmp_path):
    source = _write(
        tmp_path, PARAMS_YAML.replace("name: queue_url", "name: project").replace("queue_url}", "project}")
    )
    with pytest.raises(SpecError) as e:
        write_flex_template(source, tmp_path / "tpl")
    assert "'project'" in str(e.value) and "--project" in str(e.value)
    assert not (tmp_path / "tpl").exists()


def test_file_with_two_integrations_needs_a_name(tmp_path):
    source = _write(tmp_path, PARAMS_YAML + "---\n" + STREAMING_YAML)
    with pytest.raises(SpecError) as e:
        write_flex_template(source, tmp_path / "tpl")
    assert "orders-to-files" in str(e.value) and "from-pubsub" in str(e.value)
    result = write_flex_template(source, tmp_path / "tpl", name="from-pubsub")
    assert json.loads((tmp_path / "tpl" / "metadata.json").read_text())["name"] == "from-pubsub"
    assert 'INTEGRATION = "from-pubsub"' in (tmp_path / "tpl" / "launcher.py").read_text()
    assert result.integration == "from-pubsub"
    with pytest.raises(SpecError, match="no integration named 'nope'"):
        write_flex_template(source, tmp_path / "tpl", name="nope")


def test_invalid_file_is_a_spec_error(tmp_path):
    with pytest.raises(SpecError):
        write_flex_template(_write(tmp_path, "kind: Integration\n"), tmp_path / "tpl")


# --------------------------------------------------------------------------- the other files


def test_files_and_commands(tmp_path):
    out = tmp_path / "tpl"
    result = write_flex_template(QUICKSTART, out, image="europe-docker.pkg.dev/p/r/qs:1")
    names = {p.relative_to(out).as_posix() for p in result.files}
    assert names == {
        "metadata.json",
        "Dockerfile",
        "launcher.py",
        "README.md",
        "integration.yaml",
        "requirements.txt",
        "src/setup.py",
    }
    for rel in ("Dockerfile", "launcher.py", "README.md"):
        assert "{{" not in (out / rel).read_text(), rel
    dockerfile = (out / "Dockerfile").read_text()
    from apache_beam.version import __version__ as beam

    assert f"ARG BEAM_VERSION={beam}" in dockerfile
    assert "python311-template-launcher-base" in dockerfile
    assert 'FLEX_TEMPLATE_PYTHON_PY_FILE="${WORKDIR}/launcher.py"' in dockerfile
    assert 'FLEX_TEMPLATE_PYTHON_SETUP_FILE="${WORKDIR}/src/setup.py"' in dockerfile
    compile((out / "launcher.py").read_text(), "launcher.py", "exec")
    assert (out / "integration.yaml").read_bytes() == QUICKSTART.read_bytes()
    requirements = (out / "requirements.txt").read_text().splitlines()
    assert f"apache-beam[gcp]=={beam}" in requirements and set(runtime_pins()) <= set(requirements)
    assert (out / "src" / "meshline" / "template.py").is_file()
    assert not list((out / "src").rglob("__pycache__"))

    build_image, build_template, run = result.commands
    assert (
        build_image.startswith(f"gcloud builds submit {out}")
        and "--tag europe-docker.pkg.dev/p/r/qs:1" in build_image
    )
    assert build_template.startswith(
        "gcloud dataflow flex-template build gs://BUCKET/templates/quickstart.json"
    )
    for part in (
        "--image europe-docker.pkg.dev/p/r/qs:1",
        "--sdk-language PYTHON",
        f"--metadata-file {out}/metadata.json",
    ):
        assert part in build_template
    assert run.startswith('gcloud dataflow flex-template run "quickstart-')
    for part in (
        "--template-file-gcs-location gs://BUCKET/templates/quickstart.json",
        "--region REGION",
        "--parameters input=INPUT",
        "--parameters output=OUTPUT",
        "--parameters sdk_container_image=europe-docker.pkg.dev/p/r/qs:1",
    ):
        assert part in run
    rendered = result.render()
    assert str(out) in rendered and all(c in rendered for c in result.commands)


def test_regenerating_replaces_the_package_copy(tmp_path):
    out = tmp_path / "tpl"
    write_flex_template(QUICKSTART, out)
    stale = out / "src" / "meshline" / "stale_module.py"
    stale.write_text("x = 1\n")
    write_flex_template(QUICKSTART, out)
    assert not stale.exists()


def test_templates_dir(tmp_path, monkeypatch):
    assert (templates_dir() / "Dockerfile").is_file()
    custom = tmp_path / "custom"
    custom.mkdir()
    for name in ("Dockerfile", "launcher.py", "README.md"):
        (custom / name).write_text((templates_dir() / name).read_text())
    monkeypatch.setenv("MESHLINE_TEMPLATES", str(custom))
    assert templates_dir() == custom
    (custom / "Dockerfile").unlink()
    monkeypatch.setattr("meshline.template.STATIC_FILES", ("Dockerfile", "nope.txt"))
    with pytest.raises(MeshlineError, match="not in any of"):
        templates_dir()


def test_worker_package_is_self_contained(tmp_path):
    target = write_worker_package(tmp_path / "pkg")
    setup = (target / "setup.py").read_text()
    assert "requirements.lock" not in setup  # nothing read at install time
    assert json.dumps(runtime_pins()) in setup
    r = subprocess.run(
        [sys.executable, "setup.py", "--name", "--version"],
        cwd=target,
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[:1] == ["meshline"]
    cached = worker_package()
    assert cached == worker_package() and (cached / "setup.py").is_file()
    assert (cached / "meshline" / "py.typed").is_file()


# --------------------------------------------------------------------------- the launcher


def test_split_args():
    params, beam = split_args(
        ["--input=a", "--output", "b", "--runner=direct", "--input_topic=x", "--project", "p", "--flag"],
        ["input", "output"],
    )
    assert params == {"input": "a", "output": "b"}
    assert beam == ["--runner=direct", "--input_topic=x", "--project", "p", "--flag"]
    assert split_args(["--input="], ["input"]) == ({"input": ""}, [])
    with pytest.raises(RunnerError, match="--output needs a value"):
        split_args(["--output"], ["output"])


def test_runner_names():
    from meshline.launch import _pop_runner

    assert _pop_runner(["--project=p"]) == ("dataflow", ["--project=p"])
    assert _pop_runner(["--runner=DataflowRunner", "--x"]) == ("dataflow", ["--x"])
    assert _pop_runner(["--runner", "DirectRunner"]) == ("direct", [])
    assert _pop_runner(["--runner=direct"]) == ("direct", [])
    assert _pop_runner(["--runner=apache_beam.runners.portability.prism_runner.PrismRunner"])[0] == "prism"
    with pytest.raises(RunnerError, match="unknown runner"):
        _pop_runner(["--runner=SparkRunner"])


# --------------------------------------------------------------------------- the dataflow runner


def test_dataflow_runner_names_every_missing_option():
    with pytest.raises(RunnerError) as e:
        make_runner(RunnerSettings(name="dataflow"))
    message = str(e.value)
    assert "\n" not in message
    assert "--project, --region, --temp_location" in message
    with pytest.raises(RunnerError) as e:
        dataflow_runner(
            RunnerSettings(name="dataflow", beam_args=["--project", "p", "--temp_location=gs://b/t"])
        )
    assert "--region" in str(e.value) and "--project" not in str(e.value).split("(")[0]
    assert missing_options(OPTIONS) == []


def test_dataflow_runner_wants_cloud_storage_locations():
    with pytest.raises(RunnerError, match=r"--temp_location=/tmp/x: .*gs://"):
        dataflow_runner(
            RunnerSettings(name="dataflow", beam_args=["--project=p", "--region=r", "--temp_location=/tmp/x"])
        )
    with pytest.raises(RunnerError, match="--staging_location"):
        dataflow_runner(RunnerSettings(name="dataflow", beam_args=[*OPTIONS, "--staging_location=/tmp/s"]))
    pytest.importorskip("apitools")
    # a local endpoint is a test double: Beam skips its GCS checks, and so does Meshline
    local = ["--project=p", "--region=r", "--temp_location=/tmp/x", "--dataflow_endpoint=http://localhost:1"]
    runner, _ = dataflow_runner(RunnerSettings(name="dataflow", beam_args=local))
    assert type(runner).__name__ == "DataflowRunner"


def test_dataflow_runner_stages_meshline_unless_told_otherwise(tmp_path):
    pytest.importorskip("apitools")
    runner, args = dataflow_runner(RunnerSettings(name="dataflow", beam_args=OPTIONS))
    assert type(runner).__name__ == "DataflowRunner"
    [setup] = [a for a in args if a.startswith("--setup_file=")]
    path = Path(setup.partition("=")[2])
    assert path.is_file() and str(path).startswith(str(tmp_path / "cache"))
    assert "--streaming" not in args
    _, args = dataflow_runner(RunnerSettings(name="dataflow", streaming=True, beam_args=OPTIONS))
    assert "--streaming" in args
    for own in ("--setup_file=/x/setup.py", "--sdk_container_image=img", "--extra_package=/x/p.tar.gz"):
        _, args = dataflow_runner(RunnerSettings(name="dataflow", beam_args=[*OPTIONS, own]))
        assert not any(a.startswith("--setup_file") for a in args), own
