"""`--dist loadgroup` really keeps a group on one worker (tests/conftest.py relies on it).

pytest-xdist 3.8 names a test's group by renaming its node id, which pytest 9 ignores: the
groups were silently dropped and every worker started its own copy of each session server.
This runs a small session on two workers and looks at where each test of one group ran.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

CASE = """
import os
import pytest

@pytest.fixture(scope="module")
def shared(request):
    with open(os.environ["XDIST_GROUPS_LOG"], "a") as f:
        f.write(f"setup {request.param}\\n")
    yield request.param

@pytest.mark.parametrize("shared", ["a", "b", "c"], indirect=True)
@pytest.mark.xdist_group("one")
def test_one(shared):
    with open(os.environ["XDIST_GROUPS_LOG"], "a") as f:
        f.write(f"ran {os.environ['PYTEST_XDIST_WORKER']}\\n")

@pytest.mark.parametrize("shared", ["b", "c"], indirect=True)
@pytest.mark.xdist_group("one")
def test_two(shared):
    with open(os.environ["XDIST_GROUPS_LOG"], "a") as f:
        f.write(f"ran {os.environ['PYTEST_XDIST_WORKER']}\\n")
"""


def test_a_group_runs_on_one_worker_and_its_module_fixture_is_set_up_once_per_param(tmp_path: Path) -> None:
    (tmp_path / "test_case.py").write_text(textwrap.dedent(CASE))
    log = tmp_path / "log"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-n",
            "2",
            "--dist",
            "loadgroup",
            "--rootdir",
            str(tmp_path),
            str(tmp_path / "test_case.py"),
        ],
        cwd=tmp_path,
        env={**os.environ, "XDIST_GROUPS_LOG": str(log)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    lines = log.read_text().splitlines()
    workers = {line.split()[1] for line in lines if line.startswith("ran ")}
    assert len(workers) == 1, f"one group ran on {sorted(workers)}"
    assert sorted(line for line in lines if line.startswith("setup ")) == ["setup a", "setup b", "setup c"]
