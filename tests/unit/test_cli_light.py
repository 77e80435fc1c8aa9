"""The CLI answers at once: commands that run no pipeline import neither Beam nor client libraries.

Each check runs in a fresh interpreter (this test process has Beam loaded already)
and looks at ``sys.modules`` after the command; no timing is asserted here (the
timings are in the report of the change and in ``docs/cli.md``).
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "pipelines" / "quickstart.yaml"
HEAVY = (
    "apache_beam",
    "boto3",
    "botocore",
    "confluent_kafka",
    "google.cloud.storage",
    "google.cloud.pubsub_v1",
    "azure.storage",
    "pika",
    "snowflake.connector",
    "pyarrow",
    "fastavro",
    "numpy",
    "grpc",
)

_PROBE = """
import contextlib, io, json, sys
from meshline.cli import main
heavy = json.loads(sys.argv[1])
report = {}
for argv in json.loads(sys.argv[2]):
    out, err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8"), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(argv)
        except SystemExit as e:
            status = e.code
    out.flush()
    report[" ".join(argv)] = {
        "status": status,
        "loaded": sorted(h for h in heavy if h in sys.modules),
        "stdout": out.buffer.getvalue().decode()[:2000],
    }
print(json.dumps(report))
"""


def _probe(commands: list[list[str]], tmp_path: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(HEAVY), json.dumps(commands)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_commands_that_run_no_pipeline_do_not_import_beam(tmp_path):
    manifests = ROOT / "tests" / "data" / "triggermesh" / "samples"
    commands = [
        ["--help"],
        ["--version"],
        ["validate", str(QUICKSTART)],
        ["validate", "--format", "json", *map(str, sorted((ROOT / "pipelines").glob("*.yaml")))],
        ["connectors"],
        ["connectors", "kafka"],
        ["schema"],
        ["graph", str(QUICKSTART)],
        ["completion", "bash"],
        ["completion", "zsh"],
    ]
    if manifests.is_dir():
        commands.append(["import", "triggermesh", str(manifests), "-o", str(tmp_path / "imported.yaml")])
    report = _probe(commands, tmp_path)
    for command, seen in report.items():
        assert seen["status"] in (0, None), (command, seen)
        assert seen["loaded"] == [], f"meshline {command} imported {seen['loaded']}"
    assert report["--version"]["stdout"].startswith("meshline ")
    assert "Apache Beam 2." in report["--version"]["stdout"]


def test_no_connector_declaration_imports_beam_or_a_client_library(tmp_path):
    code = (
        "import json, sys\n"
        "from meshline import registry\n"
        "for kind in ('source', 'target', 'transformation'):\n"
        "    for i in registry.ids(kind):\n"
        "        c = registry.lookup(kind, i); c.schema(); c.secret_marks\n"
        f"print(json.dumps(sorted(h for h in {list(HEAVY)!r} if h in sys.modules)))\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == []


def test_the_coder_is_still_reachable_where_it_was():
    # meshline.events no longer hands it out: that made events and coder import each other
    import meshline
    from meshline.coder import CloudEventCoder

    assert meshline.CloudEventCoder is CloudEventCoder


# --------------------------------------------------------------------------- completion


def _script(shell: str, tmp_path: Path) -> Path:
    from meshline.cli import main

    path = tmp_path / f"meshline.{shell}"
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["completion", shell]) == 0
    path.write_text(out.getvalue())
    return path


def test_bash_completion_offers_commands_flags_choices_and_files(tmp_path):
    script = _script("bash", tmp_path)
    (tmp_path / "orders.yaml").write_text("x")
    probe = """
source "$1"
t() {
    COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMPREPLY=()
    _meshline; echo "${COMPREPLY[*]}"
}
t meshline te
t meshline run --runner ""
t meshline run orders.yaml --log-format ""
t meshline connectors kaf
t meshline test orders.yaml --
t meshline run ord
t meshline test orders.yaml --report ord
t meshline completion ""
"""
    r = subprocess.run(
        ["bash", "-c", probe, "probe", str(script)], capture_output=True, text=True, cwd=tmp_path
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "test template",
        "direct prism flink dataflow",
        "text json",
        "kafka",
        "--help --param --update --report --format --watch",
        "orders.yaml",
        "orders.yaml",
        "bash zsh",
    ]


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
def test_zsh_completion_lists_the_runners(tmp_path):
    """In a real interactive zsh (on a pseudo-terminal), TAB after --runner lists the runners."""
    import pty

    script = _script("zsh", tmp_path)
    pid, fd = pty.fork()
    if pid == 0:  # the child: an interactive zsh without any user configuration
        os.execvpe(
            "zsh", ["zsh", "-f", "-i"], {"PATH": os.environ["PATH"], "TERM": "dumb", "HOME": str(tmp_path)}
        )
    seen = b""
    try:
        os.write(fd, f"autoload -U compinit; compinit -u -D; source {script}; setopt nolistbeep\n".encode())
        os.write(fd, b"meshline run --runner \t")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(
            w in seen for w in (b"direct", b"prism", b"flink", b"dataflow")
        ):
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                try:
                    seen += os.read(fd, 4096)
                except OSError:
                    break
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        os.close(fd)
    for word in (b"direct", b"prism", b"flink", b"dataflow"):
        assert word in seen, seen[-500:]
