"""Prism, Beam's Go runner for local streaming: find or build the binary, then run on it.

The binary is looked up, in order, at ``--prism-location``, ``$MESHLINE_PRISM``
and ``~/.cache/meshline/prism/vVERSION-loopback-2/prism`` (VERSION = the pinned Beam; the
suffix counts Meshline's patch sets, so a binary built with fewer patches is not reused).

Prism's job service (job management, artifacts and the Fn API, on one port) listens on
every interface, and it takes no bind address; a job it accepts may name a shell command
as its environment. So Meshline builds its own Prism: it fetches the module
``github.com/apache/beam/sdks/v2@vVERSION`` with ``go mod download`` (the Go module proxy),
copies its ``go`` tree, replaces the listener's address with ``127.0.0.1``
(:data:`LOOPBACK_PATCHES`), stops a busy loop that kept an idle stream's Prism at half a
core and slows its progress requests to a bundle that makes none (:data:`IDLE_PATCHES`)
— the build fails, saying which line it did not find, when the source is not what a patch
was written for — and compiles ``go/cmd/prism`` with
``go build`` into that cache (a few minutes the first time; it says so on stderr). Go's
``-overlay`` cannot stand in for the copy: it refuses files in the module cache.

A binary the user brings is checked once started (:mod:`meshline.runners.loopback`); a
stock Prism is refused there unless the run has ``--allow-exposed-runner``. Beam's own
PrismRunner would download a release zip from GitHub instead, which machines without that
access cannot do.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meshline.errors import RunnerError
from meshline.runners.guard import GuardedCommand, quiet_stop_on_exit

__all__ = [
    "IDLE_PATCHES",
    "LOOPBACK_PATCHES",
    "PATCHES",
    "SourcePatch",
    "cache_dir",
    "find_prism",
    "patch_source",
    "prism_runner",
]

MODULE = "github.com/apache/beam/sdks/v2"
PACKAGE = "./go/cmd/prism"
BUILD_TIMEOUT_S = 3600


@dataclass(frozen=True)
class SourcePatch:
    """Replace ``old`` (which must occur exactly once) with ``new`` in the module's file ``path``."""

    path: str
    old: str
    new: str


LOOPBACK_PATCHES = (
    # The job service: job management, artifact staging and retrieval, and the Fn API.
    SourcePatch(
        "go/pkg/beam/runners/prism/internal/jobservices/server.go",
        'net.Listen("tcp", fmt.Sprintf(":%d", port))',
        'net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))',
    ),
    # The web UI (Meshline turns it off; "localhost" could resolve elsewhere).
    SourcePatch(
        "go/pkg/beam/runners/prism/internal/web/web.go",
        'endpoint := fmt.Sprintf("localhost:%d", port)',
        'endpoint := fmt.Sprintf("127.0.0.1:%d", port)',
    ),
)

IDLE_PATCHES = (
    # A bundle's progress loop selects on dataReady, a channel closed once the bundle's outputs
    # have all ended, and closed from the start for a stage without outputs to the runner (a
    # source fused with its targets). A closed channel is always ready, so until the bundle's
    # response came the loop spun: an idle webhook's source bundle, waiting in its pull, kept
    # Prism at ~50% of a core (perf: runtime.selectgo in stage.Execute). A nil channel is never
    # selected, so the loop then waits for the response, a progress tick or cancellation.
    SourcePatch(
        "go/pkg/beam/runners/prism/internal/stage.go",
        "case <-dataReady:\n\t\t\tdataFinished = true",
        "case <-dataReady:\n\t\t\tdataReady = nil // closed: a nil channel is never selected again\n"
        "\t\t\tdataFinished = true",
    ),
    # The same loop asks the SDK for the bundle's progress every 100 ms, for as long as the bundle
    # runs: an idle source's bundle waits in its pull for seconds, and ten progress reports a
    # second were the largest part of the SDK worker's idle CPU (py-spy: process_bundle_progress,
    # monitoring_infos). While a bundle reports no progress, and is not split (Meshline turns
    # runner-initiated SDF splits off), ask half as often each time, up to every 2 s; progress
    # brings the interval back. Only the live counts of a stalled bundle refresh more slowly.
    SourcePatch(
        "go/pkg/beam/runners/prism/internal/stage.go",
        "\tticked := false\n\tprogTick := time.NewTicker(baseTick)\n",
        "\tticked := false\n\tidleTick := baseTick // grows while the bundle reports no progress\n"
        "\tprogTick := time.NewTicker(baseTick)\n",
    ),
    SourcePatch(
        "go/pkg/beam/runners/prism/internal/stage.go",
        '\t\t\t} else {\n\t\t\t\tpreviousIndex = index["index"]\n',
        "\t\t\t} else {\n"
        "\t\t\t\tif slow && idleTick < 2*time.Second {\n"
        "\t\t\t\t\tidleTick = min(idleTick*2, 2*time.Second)\n"
        "\t\t\t\t\tprogTick.Reset(idleTick)\n"
        "\t\t\t\t} else if !slow && idleTick != baseTick {\n"
        "\t\t\t\t\tidleTick = baseTick\n"
        "\t\t\t\t\tprogTick.Reset(idleTick)\n"
        "\t\t\t\t}\n"
        '\t\t\t\tpreviousIndex = index["index"]\n',
    ),
)

#: Every patch Meshline applies to Prism's source, in order.
PATCHES = LOOPBACK_PATCHES + IDLE_PATCHES


def _beam_version() -> str:
    from apache_beam.version import __version__

    return __version__


def cache_dir() -> Path:
    """Where Meshline's patched Prism for the pinned Beam lives (never a stock build).

    The suffix names the patch set (:data:`PATCHES`): ``-loopback`` had the listener patches
    only, ``-loopback-2`` adds :data:`IDLE_PATCHES`; a new patch bumps it, so a binary built
    before is not used but rebuilt."""
    base = os.environ.get("MESHLINE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "meshline")
    return Path(base) / "prism" / f"v{_beam_version()}-loopback-2"


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


def is_meshline_build(binary: str) -> bool:
    """Whether ``binary`` is the loopback-only Prism Meshline built."""
    return os.path.realpath(binary) == os.path.realpath(cache_dir() / "prism")


def patch_source(text: str, patch: SourcePatch, version: str) -> str:
    """``text`` with ``patch`` applied; a RunnerError when its line is not there exactly once."""
    count = text.count(patch.old)
    if count != 1:
        raise RunnerError(
            f"cannot build a loopback-only Prism {version}: {patch.path} has {patch.old!r} "
            f"{count} times, not once (the patch in meshline/runners/prism.py was written for Beam "
            "v2.77.0 and needs updating)"
        )
    return text.replace(patch.old, patch.new)


def _go_failure(what: str, proc: subprocess.CompletedProcess[str]) -> RunnerError:
    tail = " | ".join(proc.stderr.strip().splitlines()[-5:]) or f"exit status {proc.returncode}"
    return RunnerError(f"could not build Prism: {what}: {tail}")


def _module_dir(go: str, version: str, env: dict[str, str]) -> Path:
    """The module's sources in Go's module cache (downloaded through the module proxy if needed)."""
    proc = subprocess.run(
        [go, "mod", "download", "-json", f"{MODULE}@{version}"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=BUILD_TIMEOUT_S,
    )
    try:
        info = json.loads(proc.stdout or "{}")
    except ValueError:
        info = {}
    if proc.returncode != 0 or not info.get("Dir"):
        error = info.get("Error") if isinstance(info, dict) else None
        if error:
            raise RunnerError(f"could not build Prism: go mod download {MODULE}@{version}: {error}")
        raise _go_failure(f"go mod download {MODULE}@{version}", proc)
    return Path(info["Dir"])


def _patched_copy(module: Path, work: Path, version: str) -> None:
    """The module's go.mod, go.sum and go/ tree under ``work``, writable, with the patches applied."""
    work.mkdir()
    for name in ("go.mod", "go.sum"):
        shutil.copyfile(module / name, work / name)
    shutil.copytree(module / "go", work / "go", copy_function=shutil.copyfile)
    for root, dirs, _ in os.walk(work):
        for d in dirs:
            os.chmod(os.path.join(root, d), 0o755)  # the module cache's are read-only
    for patch in PATCHES:
        path = work / patch.path
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise RunnerError(
                f"cannot build a loopback-only Prism {version}: {patch.path} is not in {MODULE}@{version} "
                "(the patch in meshline/runners/prism.py was written for Beam v2.77.0 and needs updating)"
            ) from None
        path.write_text(patch_source(text, patch, version), encoding="utf-8")


def _build(target: Path) -> str:
    go = shutil.which("go")
    version = f"v{_beam_version()}"
    if go is None:
        raise RunnerError(
            f"Prism is not built and Go is not on PATH to build it: install Go, or pass --prism-location / "
            f"set MESHLINE_PRISM to a prism binary built from {MODULE}/go/cmd/prism@{version}"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    print(
        f"building Prism {version} from source, listening on 127.0.0.1 only (once; takes minutes) ...",
        file=sys.stderr,
    )
    started = time.monotonic()
    env = dict(os.environ, GOFLAGS="-mod=mod", GOWORK="off")
    module = _module_dir(go, version, env)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".build-") as tmp:
        work = Path(tmp) / "src"
        _patched_copy(module, work, version)
        built = Path(tmp) / "prism"
        proc = subprocess.run(
            [go, "build", "-trimpath", "-o", str(built), PACKAGE],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=BUILD_TIMEOUT_S,
        )
        if proc.returncode != 0 or not _usable(built):
            raise _go_failure(f"go build {PACKAGE} in {MODULE}@{version}", proc)
        os.replace(built, target)
    print(f"Prism ready at {target} (built in {time.monotonic() - started:.0f}s)", file=sys.stderr)
    return str(target)


def _runner(binary: str, allow: bool) -> Any:
    from apache_beam.runners.portability.prism_runner import PrismJobServer, PrismRunner
    from apache_beam.utils import shared

    from meshline.runners.jobapi import job_service_handle
    from meshline.runners.loopback import start_loopback_workers

    class _GuardedJobServer(GuardedCommand, PrismJobServer):  # type: ignore[misc]
        """Prism dies with Meshline, even on SIGKILL, and listens on loopback only."""

        server_name = f"Prism ({binary})"
        confined = is_meshline_build(binary)
        allow_exposed = allow

    class MeshlinePrismRunner(PrismRunner):  # type: ignore[misc]
        """PrismRunner whose Prism cannot outlive Meshline nor listen beyond loopback; one per process."""

        shared_handle = shared.Shared()
        start_and_replace_loopback_environments = staticmethod(start_loopback_workers)

        def default_job_server(self, options: Any) -> Any:
            from apache_beam.options.pipeline_options import DebugOptions

            def start() -> Any:
                return quiet_stop_on_exit(_GuardedJobServer(options))

            if options.view_as(DebugOptions).lookup_experiment("disable_prism_server_singleton"):
                return start()
            return MeshlinePrismRunner.shared_handle.acquire(start)

        def create_job_service_handle(self, job_service: Any, options: Any) -> Any:
            return job_service_handle(job_service, options, retain_unknown_options=True)

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
    return _runner(binary, settings.allow_exposed), args


if __name__ == "__main__":  # `python -m meshline.runners.prism`: provision and print the path
    try:
        print(find_prism())
    except RunnerError as e:
        print(f"meshline: {e}", file=sys.stderr)
        sys.exit(1)
