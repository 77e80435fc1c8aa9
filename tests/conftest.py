"""Shared fixtures: the repository root and a runner for the ``meshline`` CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import settings

ROOT = Path(__file__).resolve().parent.parent

# Property tests draw the same examples on every run, so a failure in CI repeats on a laptop
# (and prints the blob that reproduces it). HYPOTHESIS_PROFILE=explore draws new examples.
settings.register_profile("meshline", derandomize=True, print_blob=True, database=None)
settings.register_profile("explore", print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "meshline"))


@pytest.fixture(autouse=True)
def _own_secrets():
    """Each test starts with the secrets the process knew before it: loading an integration
    teaches the process its secret values (masked in every text from then on), and one test's
    short secrets must not mask another test's output."""
    from meshline import secrets

    known, ordered, stored = set(secrets._KNOWN), secrets._KNOWN_SORTED, dict(secrets._STORE)
    yield
    with secrets._LOCK:
        secrets._KNOWN.clear()
        secrets._KNOWN.update(known)
        secrets._KNOWN_SORTED = ordered
        secrets._STORE.clear()
        secrets._STORE.update(stored)


@pytest.fixture
def meshline():
    """Run ``meshline ARGS…`` as a user would; returns the CompletedProcess (text)."""
    exe = Path(sys.executable).parent / "meshline"

    def run(*args: str, cwd: Path | str = ROOT, env: dict[str, str] | None = None, timeout: int = 300):
        full_env = dict(os.environ)
        full_env.update(env or {})
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "meshline.cli"]
        return subprocess.run(
            [*cmd, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout, check=False
        )

    return run
