"""The job jar made self-contained (meshline.runners.flink_jar) and the loopback worker pool."""

from __future__ import annotations

import socket
import zipfile
from pathlib import Path

from meshline.runners import flink_jar, worker_pool


def _jar(path: Path, entries: dict[str, str], manifest: str = "Manifest-Version: 1.0\n") -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("META-INF/MANIFEST.MF", manifest)
        for name, text in entries.items():
            z.writestr(name, text)
    return path


def test_dependencies_are_added_services_merged_and_flinks_own_left_out(tmp_path: Path):
    lib = tmp_path / "lib"
    lib.mkdir()
    _jar(
        lib / "beam-sdks-java-core-2.62.0.jar",
        {
            "org/apache/beam/sdk/Pipeline.class": "core",
            "org/apache/beam/Shared.class": "from the dependency",
            "META-INF/services/org.apache.beam.Registrar": "a.Core\nb.Shared\n",
            "META-INF/SIGNER.SF": "a signature that no longer matches",
        },
    )
    _jar(lib / "flink-streaming-java-1.19.3.jar", {"org/apache/flink/Stream.class": "flink"})
    _jar(lib / "slf4j-api-1.7.30.jar", {"org/slf4j/Logger.class": "slf4j"})
    _jar(lib / "beam-runners-flink-1.19-2.62.0.jar", {"org/apache/beam/runners/flink/X.class": "runner"})
    class_path = " ".join(f"lib/{p.name}" for p in sorted(lib.iterdir()))
    launcher = _jar(tmp_path / "job-server.jar", {}, f"Manifest-Version: 1.0\nClass-Path: {class_path}\n")
    job = _jar(
        tmp_path / "job.jar",
        {
            "BEAM-PIPELINE/job/pipeline.json": "{}",
            "org/apache/beam/Shared.class": "the job's own",
            "META-INF/services/org.apache.beam.Registrar": "b.Shared\nc.Runner\n",
        },
        "Manifest-Version: 1.0\nMain-Class: org.apache.beam.runners.flink.FlinkPipelineRunner\n",
    )

    assert flink_jar.make_self_contained(job, launcher) == 1  # only beam-sdks-java-core
    with zipfile.ZipFile(job) as z:
        names = set(z.namelist())
        assert "org/apache/beam/sdk/Pipeline.class" in names
        assert "org/apache/flink/Stream.class" not in names and "org/slf4j/Logger.class" not in names
        assert "META-INF/SIGNER.SF" not in names
        assert z.read("org/apache/beam/Shared.class") == b"the job's own"  # the job jar's first
        assert z.read("META-INF/services/org.apache.beam.Registrar").decode().split() == [
            "b.Shared",
            "c.Runner",
            "a.Core",
        ]
        assert b"FlinkPipelineRunner" in z.read("META-INF/MANIFEST.MF")
        assert z.read("BEAM-PIPELINE/job/pipeline.json") == b"{}"


def test_a_shaded_job_server_adds_nothing(tmp_path: Path):
    launcher = _jar(tmp_path / "shaded.jar", {"org/apache/beam/runners/flink/FlinkJobServerDriver.class": ""})
    job = _jar(tmp_path / "job.jar", {"a.class": "x"})
    before = job.read_bytes()
    assert flink_jar.make_self_contained(job, launcher) == 0
    assert job.read_bytes() == before


def test_the_worker_pool_listens_on_loopback_only():
    address, server = worker_pool.start(0)
    try:
        host, port = address.rsplit(":", 1)
        assert host == "127.0.0.1"
        with socket.create_connection(("127.0.0.1", int(port)), timeout=5):
            pass
        listening = (
            Path("/proc/net/tcp").read_text().splitlines()[1:]
            + Path("/proc/net/tcp6").read_text().splitlines()[1:]
        )
        local = [line.split()[1] for line in listening if line.split()[3] == "0A"]  # LISTEN
        mine = [a for a in local if int(a.rsplit(":", 1)[1], 16) == int(port)]
        loopback = ("0100007F:", "0000000000000000FFFF00000100007F:")  # 127.0.0.1, or v4-mapped in tcp6
        assert mine and all(a.startswith(loopback) for a in mine), mine  # never [::] or 0.0.0.0
    finally:
        server.stop(1)  # type: ignore[attr-defined]
