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
        from tests.harness import dies_with_us  # a killed pytest leaves no run (and no job server) behind

        cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "meshline.cli"]
        return subprocess.run(
            dies_with_us([*cmd, *args]),
            cwd=cwd,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    return run


# ---------------------------------------------------------------- parallel runs (pytest-xdist)
#
# `make integration` and `make e2e` run tests on several workers (`-n 4 --dist loadgroup`): most of
# their time is spent waiting on servers, runners and queues, not computing. A server a fixture
# starts once per session (tests/servers/) or once per module must then be started by one worker
# only: every test that uses such a fixture — a session- or module-scoped fixture defined under
# tests/ that yields, i.e. holds something to stop — gets an ``xdist_group`` named after it, and
# tests that share any of those fixtures (directly, through other fixtures, or through a
# ``servers(NAME…)`` mark where a fixture is looked up at run time) end in one group, so one
# worker runs them all against one server.


def _server_keys(item: pytest.Item) -> list[str]:
    import inspect

    keys = [name for m in item.iter_markers("servers") for name in m.args]
    defs = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
    for name in getattr(item, "fixturenames", ()):
        for fd in defs.get(name, ()):
            if fd.scope not in ("session", "module"):
                continue
            if not getattr(fd.func, "__module__", "").startswith("tests"):
                continue
            if not inspect.isgeneratorfunction(fd.func):
                continue  # nothing started, nothing to share
            keys.append(name if fd.scope == "session" else f"{item.module.__name__}::{name}")  # type: ignore[attr-defined]
    return keys


@pytest.hookimpl(tryfirst=True)  # before xdist reads the marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.pluginmanager.hasplugin("xdist"):
        return
    parent: dict[str, str] = {}

    def root(k: str) -> str:
        while parent.setdefault(k, k) != k:
            k = parent[k]
        return k

    per_item = [(item, _server_keys(item)) for item in items]
    for _, keys in per_item:
        for k in keys[1:]:
            a, b = sorted((root(keys[0]), root(k)))
            parent[b] = a
    for item, keys in per_item:
        if keys:
            item.add_marker(pytest.mark.xdist_group(root(keys[0])), append=False)  # the closest mark
