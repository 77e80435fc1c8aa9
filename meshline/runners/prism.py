"""Prism, Beam's Go runner for local streaming: find or build the binary, then run on it.

The binary is looked up, in order, at ``--prism-location``, ``$MESHLINE_PRISM``
and ``~/.cache/meshline/prism/vVERSION/prism`` (VERSION = the pinned Beam). When
none exists and Go is on ``PATH``, Meshline builds it with ``go install
github.com/apache/beam/sdks/v2/go/cmd/prism@vVERSION`` into that cache (about
a minute here the first time, from the Go module proxy) and says so on stderr.
Beam's own PrismRunner would download a release zip from GitHub instead, which
machines without that access cannot do.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from meshline.errors import RunnerError
from meshline.runners.guard import GuardedCommand, quiet_stop_on_exit

__all__ = ["cache_dir", "find_prism", "prism_runner"]

MODULE = "github.com/apache/beam/sdks/v2/go/cmd/prism"


def _beam_version() -> str:
    from apache_beam.version import __version__

    return __version__


def cache_dir() -> Path:
    base = os.environ.get("MESHLINE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "meshline")
    return Path(base) / "prism" / f"v{_beam_version()}"


def _usable(path: str | os.PathLike[str]) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def find_prism(location: str | None = None, *, build: bool = True) -> str:
    """The path of a Prism binary for the pinned Beam version; builds it if it must."""
    for where, candidate in (
        ("--prism-location", location),
        ("MESHLINE_PRISM", os.environ.get("MESHLINE_PRISM")),
    ):
        if candidate:
            if _usable(candidate):
                return str(candidate)
            raise RunnerError(f"{where}: {candidate} is not an executable Prism binary")
    cached = cache_dir() / "prism"
    if _usable(cached):
        return str(cached)
    if not build:
        raise RunnerError(f"no Prism binary at {cached}")
    return _build(cached)


def _build(target: Path) -> str:
    go = shutil.which("go")
    version = f"v{_beam_version()}"
    if go is None:
        raise RunnerError(
            f"Prism is not installed and Go is not on PATH to build it: install Go, or pass "
            f"--prism-location / set MESHLINE_PRISM to a prism binary built from {MODULE}@{version}"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    print(f"building Prism {version} with go install (once; takes a minute or more) ...", file=sys.stderr)
    env = dict(os.environ, GOBIN=str(target.parent), GOFLAGS="-mod=mod")
    proc = subprocess.run(
        [go, "install", f"{MODULE}@{version}"], env=env, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0 or not _usable(target):
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        raise RunnerError(f"could not build Prism with go install {MODULE}@{version}: {tail}")
    print(f"Prism ready at {target}", file=sys.stderr)
    return str(target)


def _runner() -> Any:
    from apache_beam.runners.portability.prism_runner import PrismJobServer, PrismRunner
    from apache_beam.utils import shared

    class _GuardedJobServer(GuardedCommand, PrismJobServer):  # type: ignore[misc]
        """Prism dies with Meshline, even on SIGKILL."""

    class MeshlinePrismRunner(PrismRunner):  # type: ignore[misc]
        """PrismRunner whose Prism process cannot outlive Meshline; one per process, as Beam's."""

        shared_handle = shared.Shared()

        def default_job_server(self, options: Any) -> Any:
            from apache_beam.options.pipeline_options import DebugOptions

            def start() -> Any:
                return quiet_stop_on_exit(_GuardedJobServer(options))

            if options.view_as(DebugOptions).lookup_experiment("disable_prism_server_singleton"):
                return start()
            return MeshlinePrismRunner.shared_handle.acquire(start)

    return MeshlinePrismRunner()


def prism_runner(settings: Any) -> tuple[Any, list[str]]:

    binary = find_prism(settings.prism_location)
    # Runner-initiated SDF splits are off: Meshline's sources checkpoint themselves, and a
    # split asked of a bundle that has not output yet makes the Python SDK divide by an
    # unsampled output size (NaN) and fail the job.
    args = [
        f"--prism_location={binary}",
        "--environment_type=LOOPBACK",
        "--experiments=prism_disable_sdf_split",
    ]
    if settings.streaming:
        args.append("--streaming")
    return _runner(), args


if __name__ == "__main__":  # `python -m meshline.runners.prism`: provision and print the path
    try:
        print(find_prism())
    except RunnerError as e:
        print(f"meshline: {e}", file=sys.stderr)
        sys.exit(1)
