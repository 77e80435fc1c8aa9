"""``meshline deploy --to flink-kubernetes``, pipeline labels across edits, and Dataflow ``--update``.

Offline: nothing is built, applied or submitted. The manifests' validation against the
operator's CRD and ``kubectl`` is in ``tests/integration/test_deploy_manifests.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from meshline.cli import main
from meshline.labels import compare, load_for_labels, name_mapping, pipeline_labels
from tests.unit.test_cli_light import QUICKSTART, _probe

REFUNDS = (
    '    - {name: refunds, type: kafka,\n       config: {bootstrap_servers: "kafka:9092", topics: refunds, '
    "group_id: g1}}\n"
)
HOOK = '{name: hook, type: http, config: {port: 8080, token: "${params.token}"}}'
KAFKA_AUTH = (
    ', username: app,\n               password: "${params.pw}", security_protocol: SASL_SSL, '
    "sasl_mechanism: PLAIN"
)
EXTRA_TRIGGER = "    - {name: extra, target: out, filters: [{exact: {type: x}}]}\n"
SECRET_DEFAULT = "s3cr3t-default-value-7f3a"
SECRET_GIVEN = "given-secret-value-91c2"

OLD = f"""\
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {{name: orders-flow}}
spec:
  parameters:
    - {{name: pw, secret: true, default: "{SECRET_DEFAULT}"}}
    - {{name: token, secret: true, required: true}}
  sources:
    - name: orders
      type: kafka
      config: {{bootstrap_servers: "kafka:9092", topics: orders, group_id: g1, username: app,
               password: "${{params.pw}}", security_protocol: SASL_SSL, sasl_mechanism: PLAIN}}
    - {{name: refunds, type: kafka,
       config: {{bootstrap_servers: "kafka:9092", topics: refunds, group_id: g1}}}}
    - {{name: hook, type: http, config: {{port: 8080, token: "${{params.token}}"}}}}
  transformations:
    - {{name: price, type: jq, config: {{program: '.data.total = 1'}}}}
  targets:
    - {{name: out, type: log}}
    - {{name: rejects, type: log}}
  triggers:
    - {{name: big, target: out, steps: [price], sources: [orders]}}
    - {{name: ref, target: out, sources: [refunds]}}
    - {{name: hooked, target: out, sources: [hook]}}
  deadLetter: rejects
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _edited(**replacements: str) -> str:
    text = OLD
    for old, new in replacements.items():
        assert old in text, old
        text = text.replace(old, new)
    return text


def _deploy(tmp_path: Path, capsys, *extra: str, new: str = OLD) -> tuple[int, str, str, Path]:
    path = _write(tmp_path, "new.yaml", new)
    out = tmp_path / "out"
    status = main(["deploy", str(path), "--to", "flink-kubernetes", "-o", str(out), *extra])
    captured = capsys.readouterr()
    return status, captured.out, captured.err, out


# --------------------------------------------------------------------------- deploy


def test_deploy_writes_the_image_the_deployment_and_secret_references(tmp_path, capsys):
    status, stdout, _, out = _deploy(
        tmp_path, capsys, "--parallelism", "3", "--cpu", "2", "--memory", "4096m", "--namespace", "prod",
        "--image", "registry.example/orders:1", "--state-dir", "s3://bucket/flink",
    )  # fmt: skip
    assert status == 0
    assert {p.name for p in out.iterdir()} >= {
        "Dockerfile",
        "flinkdeployment.yaml",
        "secret.example.yaml",
        "README.md",
        "integration.yaml",
        "requirements.txt",
        "src",
    }
    assert "flinkdeployment.yaml" in stdout
    dep = yaml.safe_load((out / "flinkdeployment.yaml").read_text())
    assert (dep["apiVersion"], dep["kind"]) == ("flink.apache.org/v1beta1", "FlinkDeployment")
    spec = dep["spec"]
    assert spec["job"] == {
        "jarURI": "local:///opt/meshline/job.jar",
        "parallelism": 3,
        "upgradeMode": "savepoint",
        "state": "running",
    }
    assert spec["image"] == "registry.example/orders:1" and dep["metadata"]["namespace"] == "prod"
    conf = spec["flinkConfiguration"]
    assert conf["execution.checkpointing.interval"] == "10s"
    assert conf["state.savepoints.dir"] == "s3://bucket/flink/savepoints"
    assert conf["state.checkpoints.dir"] == "s3://bucket/flink/checkpoints"
    assert spec["taskManager"]["resource"] == {"cpu": 2.0, "memory": "4096m"}
    main_c, pool = spec["taskManager"]["podTemplate"]["spec"]["containers"]
    assert main_c == {"name": "flink-main-container"}
    assert pool["name"] == "beam-worker-pool" and pool["image"] == "registry.example/orders:1"
    assert pool["ports"] == [{"name": "beam-pool", "containerPort": 50000}]
    assert "meshline.runners.worker_pool" in pool["command"]
    assert pool["env"] == [
        {
            "name": f"MESHLINE_PARAM_{p}",
            "valueFrom": {"secretKeyRef": {"name": "orders-flow-secrets", "key": p}},
        }
        for p in ("pw", "token")
    ]
    secret = yaml.safe_load((out / "secret.example.yaml").read_text())
    assert secret["kind"] == "Secret" and secret["metadata"]["name"] == "orders-flow-secrets"
    assert secret["stringData"] == {"pw": "CHANGE-ME", "token": "CHANGE-ME"}
    docker = (out / "Dockerfile").read_text()
    assert docker.startswith("# syntax") and "FROM flink:1.19-java17 AS base" in docker
    assert "--output_executable_path=/opt/meshline/job.jar" in docker
    assert "apache-beam[gcp]==2.77.0" in (out / "requirements.txt").read_text()
    readme = (out / "README.md").read_text()
    assert "docker build -t registry.example/orders:1 ." in readme and "kubectl apply" in readme


def test_deploy_writes_no_secret_value(tmp_path, capsys):
    status, stdout, stderr, out = _deploy(tmp_path, capsys, "--param", f"pw={SECRET_GIVEN}")
    assert status == 0
    assert SECRET_DEFAULT in OLD
    for path in out.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert SECRET_DEFAULT.encode() not in data, path
            assert SECRET_GIVEN.encode() not in data, path
    assert SECRET_GIVEN not in stdout + stderr and SECRET_DEFAULT not in stdout + stderr
    deployed = yaml.safe_load((out / "integration.yaml").read_text())
    pw = next(p for p in deployed["spec"]["parameters"] if p["name"] == "pw")
    assert pw == {"name": "pw", "secret": True, "required": True}


def test_deploy_refuses_a_secret_written_in_the_file(tmp_path, capsys):
    text = _edited(**{'password: "${params.pw}"': "password: hunter2-literal"})
    status, _, stderr, _ = _deploy(tmp_path, capsys, new=text)
    assert status == 1
    assert "secret is written in the file" in stderr and "hunter2-literal" not in stderr


def test_deploy_refuses_an_unknown_platform(tmp_path, capsys):
    status, _, stderr, out = _deploy(tmp_path, capsys, "--to", "nomad")
    assert status == 2
    assert "unknown --to 'nomad'" in stderr and not out.exists()


def test_deploy_without_previous_does_not_import_beam(tmp_path):
    path = _write(tmp_path, "new.yaml", OLD)
    command = ["deploy", str(path), "--to", "flink-kubernetes", "-o", str(tmp_path / "out")]
    report = _probe([command], tmp_path)
    seen = report[" ".join(command)]
    assert seen["status"] == 0 and seen["loaded"] == []


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            {"name: refunds, type": "name: returns, type", "sources: [refunds]": "sources: [returns]"},
            ["warning: Source[refunds] renamed to Source[returns]"],
        ),
        (
            {
                REFUNDS: "",
                "    - {name: ref, target: out, sources: [refunds]}\n": "",
            },
            ["warning: Source[refunds] removed"],
        ),
        (
            {"topics: refunds, group_id: g1": "topics: refunds, group_id: g2"},
            ["warning: Source[refunds]: config"],
        ),
        ({"type: http, config": "type: generate, config"}, ["warning: Source[hook]: type http -> generate"]),
    ],
    ids=["renamed", "removed", "group-changed", "type-changed"],
)
def test_previous_warns_when_a_savepoint_loses_a_source(tmp_path, capsys, edit, expected):
    if "generate" in str(edit):
        edit = {HOOK: "{name: hook, type: generate, config: {count: 1}}"}
    old = _write(tmp_path, "old.yaml", OLD)
    status, _, stderr, _ = _deploy(tmp_path, capsys, "--previous", str(old), new=_edited(**edit))
    assert status == 0
    warnings = [line for line in stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == len(expected), stderr
    for line, start in zip(warnings, expected, strict=True):
        assert line.startswith(start), stderr


def test_previous_is_silent_on_an_added_trigger_and_a_changed_step(tmp_path, capsys):
    old = _write(tmp_path, "old.yaml", OLD)
    new = _edited(
        **{
            ".data.total = 1": ".data.total = (.data.amount * 2)",
            "  deadLetter: rejects": EXTRA_TRIGGER + "  deadLetter: rejects",
        }
    )  # fmt: skip
    status, _, stderr, _ = _deploy(tmp_path, capsys, "--previous", str(old), new=new)
    assert status == 0
    assert not [line for line in stderr.splitlines() if line.startswith("warning:")], stderr
    assert "kept with its state: Source[hook], Source[orders], Source[refunds]" in stderr


# --------------------------------------------------------------------------- labels and Dataflow --update


def test_labels_of_an_edited_file_keep_the_untouched_stages(tmp_path):
    old_path = _write(tmp_path, "old.yaml", OLD)
    new_path = _write(
        tmp_path,
        "new.yaml",
        _edited(**{"name: refunds, type": "name: returns, type", "sources: [refunds]": "sources: [returns]"}),
    )
    [old], [new] = load_for_labels(old_path), load_for_labels(new_path)
    old_labels, new_labels = pipeline_labels(old, "dataflow"), pipeline_labels(new, "dataflow")
    untouched = [label for label in old_labels if "refunds" not in label]
    assert untouched and set(untouched) <= set(new_labels)
    assert "Source[orders]" in untouched and "Target[out]" in untouched and "Route[orders]" in untouched
    compat = compare(old_labels, new_labels, old, new)
    assert compat.renamed == {
        "Source[refunds]": "Source[returns]",
        "Route[refunds]": "Route[returns]",
        "DecodeFailures[refunds]": "DecodeFailures[returns]",
    }
    assert compat.removed == [] and compat.added == []
    mapping = name_mapping(compat, old_labels)
    assert mapping["Source[refunds]"] == "Source[returns]"
    nested = {k: v for k, v in mapping.items() if "/" in k}
    assert nested and all(v == k.replace("[refunds]", "[returns]", 1) for k, v in nested.items())
    assert set(mapping.values()) <= set(new_labels)


def test_a_renamed_target_maps_its_labels(tmp_path):
    renamed = OLD.replace("name: out,", "name: sink,").replace("target: out", "target: sink")
    old_path, new_path = _write(tmp_path, "old.yaml", OLD), _write(tmp_path, "new.yaml", renamed)
    [old], [new] = load_for_labels(old_path), load_for_labels(new_path)
    old_labels = pipeline_labels(old, "dataflow")
    compat = compare(old_labels, pipeline_labels(new, "dataflow"), old, new)
    assert compat.renamed["Target[out]"] == "Target[sink]"
    assert compat.renamed["Merge[out]"] == "Merge[sink]"


def _captured_run(monkeypatch) -> dict:
    """Replace the run itself: what ``meshline run`` would hand the runner."""
    import meshline.run

    seen: dict = {}

    def fake_run(resolved, settings, **kwargs):
        seen["settings"] = settings
        return False

    monkeypatch.setattr(meshline.run, "run_integration", fake_run)
    return seen


def test_run_update_on_dataflow_adds_update_and_the_mapping(tmp_path, monkeypatch):
    from apache_beam.options.pipeline_options import GoogleCloudOptions, PipelineOptions

    no_secrets = OLD.replace(KAFKA_AUTH, "")
    no_secrets = no_secrets.replace(', token: "${params.token}"', "").replace(
        f'default: "{SECRET_DEFAULT}"', "required: true"
    )
    old = _write(tmp_path, "old.yaml", no_secrets)
    new = _write(
        tmp_path,
        "new.yaml",
        no_secrets.replace("name: refunds,", "name: returns,").replace("[refunds]", "[returns]"),
    )
    seen = _captured_run(monkeypatch)
    status = main(
        ["run", str(new), "--runner", "dataflow", "--update", "--previous", str(old),
         "--param", "pw=projects/p/secrets/s/versions/1", "--param", "token=projects/p/secrets/t/versions/1",
         "--", "--project=p", "--region=r", "--temp_location=gs://b/t"]
    )  # fmt: skip
    assert status == 0
    options = PipelineOptions(seen["settings"].beam_args).view_as(GoogleCloudOptions)
    assert options.update is True
    mapping = options.transform_name_mapping
    assert mapping["Source[refunds]"] == "Source[returns]"
    assert mapping["Route[refunds]"] == "Route[returns]"
    assert all("refunds" in k and "returns" in v for k, v in mapping.items())
    assert seen["settings"].beam_args[:3] == ["--project=p", "--region=r", "--temp_location=gs://b/t"]


def test_run_update_without_previous_adds_only_update(tmp_path, monkeypatch):
    path = QUICKSTART
    seen = _captured_run(monkeypatch)
    assert main(["run", str(path), "--runner", "dataflow", "--update", "--", "--project=p"]) == 0
    assert seen["settings"].beam_args == ["--project=p", "--update"]


@pytest.mark.parametrize(
    "argv",
    [["--update"], ["--runner", "prism", "--update"], ["--runner", "dataflow", "--previous", "old.yaml"]],
    ids=["no-runner", "prism", "previous-alone"],
)
def test_update_is_a_usage_error_off_dataflow(tmp_path, capsys, argv):
    path = _write(tmp_path, "f.yaml", OLD)
    assert main(["run", str(path), *argv]) == 2
    assert capsys.readouterr().err.startswith("meshline: ")


def test_a_user_mapping_wins(tmp_path, monkeypatch):
    path = QUICKSTART
    seen = _captured_run(monkeypatch)
    mine = json.dumps({"a": "b"})
    argv = ["run", str(path), "--runner", "dataflow", "--update", "--previous", str(path), "--"]
    assert main([*argv, f"--transform_name_mapping={mine}"]) == 0
    assert seen["settings"].beam_args == [f"--transform_name_mapping={mine}", "--update"]
