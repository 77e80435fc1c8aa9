"""Meshline's Prism is built from Beam's source with its listeners moved to 127.0.0.1."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from meshline.errors import RunnerError
from meshline.runners import prism
from meshline.runners.prism import IDLE_PATCHES, LOOPBACK_PATCHES, PATCHES, SourcePatch, patch_source

SERVER_GO = """\
// NewServer acquires the indicated port.
func NewServer(port int, execute func(*Job)) *Server {
	lis, err := net.Listen("tcp", fmt.Sprintf(":%d", port))
	if err != nil {
		panic(fmt.Sprintf("failed to listen: %v", err))
	}
"""


def test_the_job_service_listener_is_replaced() -> None:
    patched = patch_source(SERVER_GO, LOOPBACK_PATCHES[0], "v2.77.0")
    assert 'net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))' in patched
    assert 'fmt.Sprintf(":%d", port)' not in patched
    assert patched.replace("127.0.0.1:%d", ":%d") == SERVER_GO  # nothing else changed


def test_a_source_without_the_line_fails_loudly() -> None:
    moved_on = SERVER_GO.replace('fmt.Sprintf(":%d", port)', "net.JoinHostPort(host, strconv.Itoa(port))")
    with pytest.raises(RunnerError) as e:
        patch_source(moved_on, LOOPBACK_PATCHES[0], "v9.9.9")
    message = str(e.value)
    assert "\n" not in message
    assert "cannot build a loopback-only Prism v9.9.9" in message
    assert "jobservices/server.go" in message and "0 times, not once" in message


def test_a_line_found_twice_is_ambiguous() -> None:
    with pytest.raises(RunnerError, match="2 times, not once"):
        patch_source(SERVER_GO + SERVER_GO, LOOPBACK_PATCHES[0], "v2.77.0")


def _fake_module(root: Path, patches: tuple[SourcePatch, ...]) -> Path:
    module = root / "module"
    for name in ("go.mod", "go.sum"):
        (module / name).parent.mkdir(parents=True, exist_ok=True)
        (module / name).write_text("module github.com/apache/beam/sdks/v2\n")
    for p in patches:  # several patches may change one file
        path = module / p.path
        path.parent.mkdir(parents=True, exist_ok=True)
        before = path.read_text() if path.exists() else "package x\n"
        path.write_text(f"{before}\nfunc f{len(before)}() {{\n\t{p.old}\n}}\n")
    for dirpath, _, filenames in os.walk(module):  # read-only, as in Go's module cache
        for f in filenames:
            os.chmod(os.path.join(dirpath, f), 0o444)
    return module


def test_the_build_copy_is_patched_and_the_module_left_alone(tmp_path) -> None:
    module = _fake_module(tmp_path, PATCHES)
    work = tmp_path / "work"
    prism._patched_copy(module, work, "v2.77.0")
    for p in PATCHES:
        assert p.new in (work / p.path).read_text()
        assert p.old in (module / p.path).read_text()
    assert (work / "go.mod").is_file() and (work / "go.sum").is_file()


def test_a_missing_source_file_fails_the_build_copy(tmp_path) -> None:
    module = _fake_module(tmp_path, LOOPBACK_PATCHES[:1])
    with pytest.raises(RunnerError, match=r"internal/web/web\.go is not in"):
        prism._patched_copy(module, tmp_path / "work", "v2.77.0")


def test_the_patched_binary_has_its_own_cache_path(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MESHLINE_CACHE", str(tmp_path))
    from apache_beam.version import __version__

    assert prism.cache_dir() == tmp_path / "prism" / f"v{__version__}-loopback-2"
    stock = tmp_path / "prism" / f"v{__version__}" / "prism"  # what `go install` used to build
    stock.parent.mkdir(parents=True)
    stock.write_text("#!/bin/sh\n")
    stock.chmod(0o755)
    with pytest.raises(RunnerError, match=r"no Prism binary at .*-loopback-2/prism"):
        prism.find_prism(build=False)
    assert not prism.is_meshline_build(str(stock))


def test_the_pinned_beam_source_has_each_line_once() -> None:
    """When Go's module cache holds the pinned Beam, the patches apply to it as they are."""
    from apache_beam.version import __version__

    cache = Path(os.environ.get("GOMODCACHE") or Path.home() / "go" / "pkg" / "mod")
    module = cache / "github.com" / "apache" / "beam" / "sdks" / f"v2@v{__version__}"
    if not module.is_dir():
        pytest.skip(f"{module} is not in Go's module cache")
    for p in PATCHES:
        patch_source((module / p.path).read_text(), p, f"v{__version__}")


PROGRESS_LOOP_GO = """\
	ticked := false
	progTick := time.NewTicker(baseTick)
	for {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case resp = <-b.Resp:
			bundleFinished = true
		case <-dataReady:
			dataFinished = true
			if dataFinished && bundleFinished {
				break progress // exit progress loop on close.
			}
		case <-progTick.C:
			slow := previousIndex == index["index"] && previousTotalCount == index["totalCount"]
			if slow && unsplit && b.EstimatedInputElements > 0 && s.sdfSplittable {
				progTick.Reset(newTime)
			} else {
				previousIndex = index["index"]
				previousTotalCount = index["totalCount"]
			}
		}
	}
"""


def _idle_patched() -> str:
    patched = PROGRESS_LOOP_GO
    for patch in IDLE_PATCHES:
        patched = patch_source(patched, patch, "v2.77.0")
    added = {line for p in IDLE_PATCHES for line in p.new.splitlines() if line not in p.old.splitlines()}
    kept = [line for line in patched.splitlines() if line not in added]
    assert "\n".join(kept) + "\n" == PROGRESS_LOOP_GO  # the patches only add lines
    return patched


def test_the_progress_loop_stops_selecting_a_closed_data_channel() -> None:
    """A closed channel is always ready: selected again it made the loop spin until the response."""
    patched = _idle_patched()
    case = patched.index("case <-dataReady:")
    assert patched.index("dataReady = nil", case) < patched.index("dataFinished = true", case)
    assert patched.count("dataReady = nil") == 1


def test_progress_requests_slow_down_while_a_bundle_makes_none() -> None:
    patched = _idle_patched()
    other = patched.index("} else {")
    assert "idleTick := baseTick" in patched[: patched.index("for {")]
    assert "if slow && idleTick < 2*time.Second {" in patched[other:]
    assert "idleTick = min(idleTick*2, 2*time.Second)" in patched[other:]  # doubled, up to 2 s
    assert "} else if !slow && idleTick != baseTick {" in patched[other:]  # progress: back to the base
    assert patched.index("progTick.Reset(idleTick)", other) < patched.index(
        'previousIndex = index["index"]', other
    )


def test_a_binary_built_with_fewer_patches_is_not_reused(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MESHLINE_CACHE", str(tmp_path))
    from apache_beam.version import __version__

    old = tmp_path / "prism" / f"v{__version__}-loopback" / "prism"  # the listener patches only
    old.parent.mkdir(parents=True)
    old.write_text("#!/bin/sh\n")
    old.chmod(0o755)
    with pytest.raises(RunnerError, match="no Prism binary at"):
        prism.find_prism(build=False)
    assert not prism.is_meshline_build(str(old))
