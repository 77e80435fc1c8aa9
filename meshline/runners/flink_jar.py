"""A self-contained Flink job jar for a Meshline integration (``-- --output_executable_path=JOB.jar``).

Beam's Flink job server writes the jar itself when the pipeline option
``--output_executable_path`` is set (Java's ``PortablePipelineJarCreator``): instead of
running the job it copies the classes of the jar that holds ``FlinkPipelineRunner`` and
adds the pipeline (``BEAM-PIPELINE/<job>/pipeline.json``) and its options, with
``FlinkPipelineRunner`` as the manifest's main class. ``flink run JOB.jar`` (or the
Flink Kubernetes Operator's ``FlinkDeployment``) then runs the pipeline on any Flink
of that minor version, its Python steps in an EXTERNAL worker pool
(:mod:`meshline.runners.worker_pool`) beside each TaskManager.

With Beam's shaded job-server jar that copy is complete. With the job server Meshline
assembles from the unshaded runner module (:mod:`meshline.runners.flink`) it holds only
the runner's own classes, and Flink fails with ``NoClassDefFoundError`` on Beam's SDK:
:func:`make_self_contained` adds every dependency jar the launcher's manifest names,
except Flink's own and SLF4J (the cluster's ``flink-dist`` and logging provide those, and
Flink loads ``org.apache.flink.*`` and ``org.slf4j.*`` parent-first anyway).
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

__all__ = ["make_self_contained", "provided_by_flink"]

#: Jars of the job server's class path that a Flink cluster provides itself.
_PROVIDED_PREFIXES = ("flink-", "slf4j-")
# Signatures of the dependency jars no longer match once their classes share one jar.
_SIGNATURES = (".SF", ".DSA", ".RSA", ".EC")


def provided_by_flink(jar_name: str) -> bool:
    """Whether a dependency jar is left out of the job jar: the cluster has it already."""
    return jar_name.startswith(_PROVIDED_PREFIXES)


def _class_path(launcher: Path) -> list[Path]:
    """The jars named by the launcher's ``Class-Path`` header, relative to the launcher."""
    with zipfile.ZipFile(launcher) as z:
        manifest = z.read("META-INF/MANIFEST.MF").decode()
    unfolded = manifest.replace("\r\n ", "").replace("\n ", "")
    for line in unfolded.splitlines():
        if line.startswith("Class-Path:"):
            return [launcher.parent / p for p in line.split(":", 1)[1].split()]
    return []


def _skipped(name: str) -> bool:
    upper = name.upper()
    return (
        name == "META-INF/MANIFEST.MF"
        or (upper.startswith("META-INF/") and upper.endswith(_SIGNATURES))
        or name.endswith("module-info.class")
        or name.endswith("/")
    )


def make_self_contained(job_jar: str | os.PathLike[str], job_server_jar: str | os.PathLike[str]) -> int:
    """Adds the job server's dependency jars to ``job_jar`` (in place); returns how many were added.

    Nothing is added when ``job_server_jar`` carries its classes itself (Beam's shaded jar,
    whose classes Beam copied already). The first copy of a class wins, the job jar's own
    first; ``META-INF/services`` files are merged line by line, so that every registrar
    (pipeline options, transform translators, file systems) is found.
    """
    job, launcher = Path(job_jar), Path(job_server_jar)
    deps = [p for p in _class_path(launcher) if not provided_by_flink(p.name)]
    own = {p.name for p in deps if p.name.startswith("beam-runners-flink-")}
    deps = [p for p in deps if p.name not in own]  # the job jar holds these classes already
    if not deps:
        return 0
    tmp = job.with_name(f".{job.name}.{os.getpid()}")
    seen: set[str] = set()
    services: dict[str, list[str]] = {}
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as out:
            for source in (job, *deps):
                with zipfile.ZipFile(source) as z:
                    for info in z.infolist():
                        name = info.filename
                        if name.startswith("META-INF/services/") and not name.endswith("/"):
                            lines = services.setdefault(name, [])
                            for line in z.read(info).decode().splitlines():
                                if line.strip() and line not in lines:
                                    lines.append(line)
                            continue
                        if name in seen or (source != job and _skipped(name)):
                            continue
                        seen.add(name)
                        out.writestr(info, z.read(info), compress_type=zipfile.ZIP_DEFLATED)
            for name, lines in services.items():
                out.writestr(name, "\n".join(lines) + "\n")
        os.replace(tmp, job)
    finally:
        tmp.unlink(missing_ok=True)
    return len(deps)
