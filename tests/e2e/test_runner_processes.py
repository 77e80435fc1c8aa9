"""Runner processes die with the CLI: a SIGKILL of `meshline` alone (not its process group)
leaves no Prism and no Flink job-server JVM behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.flink_support import flink_job_server
from tests.harness import free_port, running, wait_listening

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")]
ROOT = Path(__file__).resolve().parents[2]


def _children(pid: int) -> set[int]:
    """Every live descendant of ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":
                parents[int(entry.name)] = int(fields[1])
    found: set[int] = set()
    frontier = [pid]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parents.items() if pp == p and c not in found]
        found.update(kids)
        frontier += kids
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _exe(pid: int) -> str:
    try:
        return os.path.basename(os.readlink(f"/proc/{pid}/exe"))
    except OSError:
        return ""


def _webhook_spec(tmp_path: Path) -> tuple[Path, int]:
    port = free_port()
    spec = tmp_path / "hook.yaml"
    spec.write_text(
        "apiVersion: meshline.dev/v1alpha1\nkind: Integration\nmetadata: {name: orphans}\nspec:\n"
        f"  sources: [{{name: hook, type: http, config: {{port: {port}}}}}]\n"
        f'  targets: [{{name: out, type: file, config: {{path: "{tmp_path / "out"}", window: 2s}}}}]\n'
        "  triggers: [{name: all, target: out}]\n"
    )
    return spec, port


def _kill_cli_only(tmp_path: Path, runner: str, runner_exe: str, deadline_s: float, *more: str) -> None:
    """Start a webhook run, wait until it serves (the runner process is up and running the
    pipeline), SIGKILL the CLI alone and check that every process it started is gone."""
    spec, port = _webhook_spec(tmp_path)
    runners: set[int] = set()
    with running("run", str(spec), "--runner", runner, *more, stdout=subprocess.DEVNULL) as proc:
        try:
            wait_listening(port, proc, deadline_s)
            runners = {p for p in _children(proc.pid) if _exe(p).startswith(runner_exe)}
            assert runners, f"no {runner_exe} process under the run"
            everything = _children(proc.pid)
            proc.send_signal(signal.SIGKILL)  # the CLI alone: its children are not signalled
            proc.wait(timeout=30)
            deadline = time.monotonic() + 30
            while any(_alive(p) for p in everything) and time.monotonic() < deadline:
                time.sleep(0.2)
            left = {p: _cmdline(p)[:120] for p in everything if _alive(p)}
            assert left == {}, f"outlived the CLI: {left}"
        finally:
            for p in _children(proc.pid) | runners:
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass


def _need_flink() -> None:
    flink_job_server()


def test_prism_dies_with_a_sigkilled_cli(tmp_path):
    _kill_cli_only(tmp_path, "prism", "prism", 120)


def test_flink_job_server_dies_with_a_sigkilled_cli(tmp_path):
    _need_flink()
    _kill_cli_only(tmp_path, "flink", "java", 240)


def test_flink_job_server_dies_with_a_sigkilled_cli_with_a_remote_master(tmp_path):
    """With --flink-master HOST:PORT the job server still runs here, as a child of the CLI: it
    is guarded the same way (the cluster's own JVMs are the cluster's, not the run's)."""
    _need_flink()
    from tests.e2e.flink_support import flink_cluster

    with flink_cluster(tmp_path / "cluster") as master:
        _kill_cli_only(tmp_path, "flink", "java", 240, "--flink-master", master)


def test_sigterm_stops_a_flink_run_and_its_job_server(tmp_path):
    """SIGTERM to `meshline` alone (direct and Prism: tests/e2e/test_stuck_steps.py): the run
    stops with status 143 and one line, and the job-server JVM goes with it."""
    _need_flink()
    spec, port = _webhook_spec(tmp_path)
    with running("run", str(spec), "--runner", "flink", stdout=subprocess.DEVNULL) as proc:
        wait_listening(port, proc, 240)
        everything = _children(proc.pid)
        assert any(_exe(p).startswith("java") for p in everything)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)  # stopped within the deadline, or TimeoutExpired fails
    assert proc.returncode == 143, err[-2000:]
    assert "terminated (SIGTERM)" in err and "Traceback" not in err, err[-2000:]
    deadline = time.monotonic() + 30
    while any(_alive(p) for p in everything) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert {p: _cmdline(p)[:120] for p in everything if _alive(p)} == {}
