"""Fetching jars from Maven Central with ``mvn`` (Maven's ``~/.m2`` makes repeats cheap)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from meshline.errors import RunnerError

__all__ = ["DEPENDENCY_PLUGIN", "find_mvn", "mvn_error", "run_mvn"]

DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
TIMEOUT_S = 1800


def find_mvn(missing: str) -> str:
    """The path of ``mvn``; a RunnerError saying ``missing`` when it is not on PATH."""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise RunnerError(missing)
    return mvn


def run_mvn(mvn: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [mvn, "-q", "-B", "-Dstyle.color=never", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=TIMEOUT_S,
    )


def mvn_error(proc: subprocess.CompletedProcess[str]) -> str:
    """The one line of Maven's output that says what went wrong."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)
    lines = [ln.replace("[ERROR]", "").strip() for ln in text.splitlines() if "[ERROR]" in ln]
    first = next((ln for ln in lines if ln), f"mvn exited with status {proc.returncode}")
    for marker in ("Could not find artifact", "Could not transfer", "Could not resolve", "Unable to"):
        if marker in first:
            first = first[first.index(marker) :]
            break
    return first.split(" -> [Help")[0].strip()
