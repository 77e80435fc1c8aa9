"""Flink, through Beam's FlinkRunner: find or provision the Beam job server, then run on it.

Beam's Python FlinkRunner talks to a Java *job server* (``FlinkJobServerDriver``)
that translates the pipeline for Flink and either runs it in an embedded Flink
MiniCluster (``--flink-master [local]``) or submits it to a cluster's REST
endpoint (``--flink-master HOST:PORT``). Meshline starts that job server as a
subprocess from a jar it finds, in order, at:

1. ``$MESHLINE_FLINK_JOB_SERVER_JAR`` (any job-server jar the user brings; for a
   Flink other than 1.19 pass ``-- --flink_version=X.Y`` with it);
2. the cache, ``~/.cache/meshline/flink/`` (``$MESHLINE_CACHE/flink/``);
3. Maven Central, once, with ``mvn`` (Maven's ``~/.m2`` makes repeats cheap):
   first Beam's shaded ``beam-runners-flink-1.19-job-server`` at the pinned
   Beam version; when that is not published (2.77.0 is not, where this was
   written), the unshaded ``beam-runners-flink-1.19`` module of an older Beam
   release (``ASSEMBLE_FROM``) with its dependencies (~150 MB), behind a small
   launcher jar whose manifest names them (``java -jar`` is how Beam starts a
   job server). The Python SDK and that job server then differ in version:
   the portable job and Fn APIs hold for the quickstart (batch) and for
   Pub/Sub, webhook and Kafka integrations in streaming (delivery, acknowledgement
   after checkpoints).

Flink 1.19 is the default: the only Flink for which the needed modules resolve.
Streaming runs add ``--streaming``, ``--checkpointing_interval`` (bundle
finalization, hence acknowledgement, happens after a checkpoint) and
``--finish_bundle_before_checkpointing``. Without the last, a bundle ends only
when Beam's bundle-time check fires, and the bundle that gives a source its first
element (Impulse → split) sometimes never ended: its one output stayed in the SDK
worker's buffer and the run delivered nothing, ever (seen as "one streaming run in
six stalls" before; 4 of 4 runs on a busy machine; 0 of 6 with the option). With
checkpointing on, Beam never shuts Flink's sources down, so a streaming run whose
sources end (``idle_timeout``, ``max_events``) would not end on Flink; Meshline
watches the job and, once every source has ended, stops it with a draining savepoint
(:mod:`meshline.runners.flink_drain`). Beam's ``--shutdown_sources_after_idle_ms``
would end it too, but then an endless source's pending elements are lost (measured),
so Meshline does not set it. Bundle size and time and the checkpoint interval come
from ``spec.execution`` or the defaults measured for Flink (:mod:`meshline.runners.pacing`).

The SDK worker runs in the launching process (``--environment_type=LOOPBACK``),
so a remote cluster's TaskManagers must reach back to this machine: that works
when they run on it too; elsewhere pass ``-- --environment_type=EXTERNAL`` or
``DOCKER``/``PROCESS`` with their ``--environment_config``. A remote master is
asked for its Flink version (REST ``/config``) first, so an unreachable or
mismatched cluster fails at once in one line rather than after Flink's minute
of REST retries.

Nothing the run opens listens beyond 127.0.0.1 (:mod:`meshline.runners.loopback`). For
``[local]`` Meshline hands the job server a Flink configuration that binds Flink's own
ports (REST, blob server, RPC) to 127.0.0.1, unless ``$FLINK_CONF_DIR`` names the
user's own. Beam's gRPC servers in the JVM (job service, artifact staging, the Fn API
servers) bind all interfaces whatever the options say (``NettyServerBuilder.forPort``):
Meshline's Java agent (:mod:`meshline.runners.flink_agent`, built once with ``javac``)
rewrites that bind to loopback; the Python worker pool is started on 127.0.0.1. Once
the JVM is up its sockets are checked, and watched while it runs: a listener beyond
loopback stops the run unless ``--allow-exposed-runner``. Beam's uber-jar submission
to a remote cluster (``--flink_submit_uber_jar``) stages artifacts through a Python
server on all interfaces, so it needs that flag too.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

from meshline.errors import RunnerError
from meshline.runners import flink_agent, flink_jar
from meshline.runners.flink_drain import Drainer, find_local_rest
from meshline.runners.guard import GuardedCommand, quiet_stop_on_exit
from meshline.runners.jobapi import job_service_handle
from meshline.runners.loopback import refusal, start_loopback_workers
from meshline.runners.maven import DEPENDENCY_PLUGIN, find_mvn, mvn_error, run_mvn
from meshline.runners.options import given_option
from meshline.runners.pacing import pacing

__all__ = ["DEFAULT_FLINK_VERSION", "cache_dir", "find_job_server", "flink_args", "flink_runner"]

DEFAULT_FLINK_VERSION = "1.19"
# Flink version -> the Beam (Java) release whose unshaded runner module is assembled when the
# shaded job server of the pinned Beam version is not on Maven Central. 2.62.0 is the newest
# release for which both beam-runners-flink-1.19 and beam-runners-java-job-service resolve there.
ASSEMBLE_FROM = {"1.19": "2.62.0"}
SLF4J_VERSION = "1.7.30"  # what beam-runners-flink 2.62.0 depends on; slf4j-simple gives it a logger
MAIN_CLASS = "org.apache.beam.runners.flink.FlinkJobServerDriver"
PROBE_TIMEOUT_S = 10.0
#: A job jar's worker pool unless ``--environment_config`` names another: a sidecar of the
#: TaskManager (``python -m meshline.runners.worker_pool --service_port=50000``).
DEFAULT_WORKER_POOL = "127.0.0.1:50000"
LOCAL_MASTERS = ("[local]", "[auto]")
# Flink's own listeners of the embedded MiniCluster, on loopback only.
LOCAL_FLINK_CONF = """\
# Written by Meshline for --flink-master [local]: keep Flink's listeners on loopback.
rest.address: 127.0.0.1
rest.bind-address: 127.0.0.1
jobmanager.rpc.address: 127.0.0.1
jobmanager.bind-host: 127.0.0.1
taskmanager.host: 127.0.0.1
taskmanager.bind-host: 127.0.0.1
"""


def _beam_version() -> str:
    from apache_beam.version import __version__

    return __version__


def cache_dir() -> Path:
    base = os.environ.get("MESHLINE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "meshline")
    return Path(base) / "flink"


def _shaded_artifact(flink_version: str) -> str:
    return f"org.apache.beam:beam-runners-flink-{flink_version}-job-server:{_beam_version()}"


def _shaded_jar(flink_version: str) -> Path:
    return cache_dir() / f"beam-runners-flink-{flink_version}-job-server-{_beam_version()}.jar"


def _assembled_jar(flink_version: str, beam_java: str) -> Path:
    return cache_dir() / f"job-server-flink-{flink_version}-beam-{beam_java}" / "job-server.jar"


def find_job_server(flink_version: str = DEFAULT_FLINK_VERSION, *, provision: bool = True) -> str:
    """The path of a Flink job-server jar for ``flink_version``; downloads it if it must."""
    given = os.environ.get("MESHLINE_FLINK_JOB_SERVER_JAR")
    if given:
        if os.path.isfile(given) and zipfile.is_zipfile(given):
            return given
        raise RunnerError(f"MESHLINE_FLINK_JOB_SERVER_JAR: {given} is not a jar file")
    candidates = [_shaded_jar(flink_version)]
    if flink_version in ASSEMBLE_FROM:
        candidates.append(_assembled_jar(flink_version, ASSEMBLE_FROM[flink_version]))
    for jar in candidates:
        if jar.is_file():
            return str(jar)
    if not provision:
        raise RunnerError(f"no Flink job server for Flink {flink_version} under {cache_dir()}")
    return _provision(flink_version)


def _mvn() -> str:
    return find_mvn(
        "the Flink job server is not in Meshline's cache and Maven (mvn) is not on PATH to fetch it: "
        "install Maven, or set MESHLINE_FLINK_JOB_SERVER_JAR to a Beam Flink job-server jar"
    )


def _run_mvn(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_mvn(_mvn(), args, cwd)


def _provision(flink_version: str) -> str:
    _mvn()  # checked before any message
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    artifact = _shaded_artifact(flink_version)
    print(f"fetching Beam's Flink job server {artifact} with mvn (once) ...", file=sys.stderr)
    with tempfile.TemporaryDirectory(dir=root, prefix=".download-") as tmp:
        proc = _run_mvn(
            [f"{DEPENDENCY_PLUGIN}:copy", f"-Dartifact={artifact}", f"-DoutputDirectory={tmp}"], root
        )
        got = list(Path(tmp).glob("*.jar"))
        if proc.returncode == 0 and got:
            target = _shaded_jar(flink_version)
            os.replace(got[0], target)
            print(f"Flink job server ready at {target}", file=sys.stderr)
            return str(target)
    shaded_error = mvn_error(proc)
    beam_java = ASSEMBLE_FROM.get(flink_version)
    if beam_java is None:
        raise RunnerError(f"could not fetch the Flink job server {artifact}: {shaded_error}")
    print(
        f"{artifact} is not available ({shaded_error}); assembling the job server from "
        f"org.apache.beam:beam-runners-flink-{flink_version}:{beam_java} and its dependencies instead "
        f"(once; about 150 MB) ...",
        file=sys.stderr,
    )
    return _assemble(flink_version, beam_java)


def _pom(flink_version: str, beam_java: str) -> str:
    return f"""\
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.meshline</groupId>
  <artifactId>flink-job-server</artifactId>
  <version>{beam_java}</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.beam</groupId>
      <artifactId>beam-runners-flink-{flink_version}</artifactId>
      <version>{beam_java}</version>
    </dependency>
    <dependency>
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-simple</artifactId>
      <version>{SLF4J_VERSION}</version>
    </dependency>
  </dependencies>
</project>
"""


def _manifest_line(text: str) -> bytes:
    """One manifest header, folded at 72 bytes as the jar specification requires."""
    raw = text.encode()
    parts = [raw[:70]]
    raw = raw[70:]
    while raw:
        parts.append(b" " + raw[:69])
        raw = raw[69:]
    return b"\r\n".join(parts) + b"\r\n"


def _write_launcher(jar: Path, lib: Path) -> None:
    """A jar with no classes: its manifest names the main class and every jar under ``lib``."""
    class_path = " ".join(f"{lib.name}/{p.name}" for p in sorted(lib.glob("*.jar")))
    manifest = (
        _manifest_line("Manifest-Version: 1.0")
        + _manifest_line("Created-By: Meshline")
        + _manifest_line(f"Main-Class: {MAIN_CLASS}")
        + _manifest_line(f"Class-Path: {class_path}")
        + b"\r\n"
    )
    with zipfile.ZipFile(jar, "w") as z:
        z.writestr("META-INF/MANIFEST.MF", manifest)
        z.writestr("simplelogger.properties", "org.slf4j.simpleLogger.defaultLogLevel=info\n")


def _assemble(flink_version: str, beam_java: str) -> str:
    target = _assembled_jar(flink_version, beam_java)
    staging = Path(tempfile.mkdtemp(dir=cache_dir(), prefix=".assemble-"))
    staging.chmod(0o755)
    try:
        (staging / "pom.xml").write_text(_pom(flink_version, beam_java))
        proc = _run_mvn(
            [
                f"{DEPENDENCY_PLUGIN}:copy-dependencies",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={staging / 'lib'}",
            ],
            staging,
        )
        if proc.returncode != 0:
            raise RunnerError(
                f"could not fetch beam-runners-flink-{flink_version}:{beam_java} with mvn: {mvn_error(proc)}"
            )
        _write_launcher(staging / "job-server.jar", staging / "lib")
        try:
            os.rename(staging, target.parent)
        except OSError:
            if not target.is_file():  # not a concurrent provisioning that got there first
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(f"Flink job server ready at {target}", file=sys.stderr)
    return str(target)


def _local_conf_dir() -> str:
    conf = cache_dir() / "conf-local"
    path = conf / "config.yaml"
    if not path.is_file() or path.read_text() != LOCAL_FLINK_CONF:
        conf.mkdir(parents=True, exist_ok=True)
        tmp = conf / f".config.yaml.{os.getpid()}"
        tmp.write_text(LOCAL_FLINK_CONF)
        os.replace(tmp, path)
    return str(conf)


def _rest_url(master: str) -> str:
    master = master.strip().rstrip("/")
    return master if re.match(r"^https?://", master) else f"http://{master}"


def check_cluster(master: str, flink_version: str, timeout: float = PROBE_TIMEOUT_S) -> str:
    """The Flink version of the cluster at ``master`` (its REST address); a RunnerError if it is unusable.

    Beam's job server retries an unreachable master for about a minute (Flink's
    ``rest.retry.*``) before failing with a bare "Connection refused": asking the
    REST API first fails fast, and catches a cluster whose Flink differs from the
    job server's (Flink's job submission is not compatible across minor versions).
    """
    url = _rest_url(master)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"{url}/config", timeout=timeout) as response:
            body = json.loads(response.read() or b"{}")
    except (OSError, ValueError) as e:
        reason = getattr(e, "reason", None) or e
        raise RunnerError(f"--flink-master {master}: no Flink REST API answers at {url} ({reason})") from None
    cluster = str(body.get("flink-version", "")) if isinstance(body, dict) else ""
    if not cluster:
        raise RunnerError(f"--flink-master {master}: {url} answers, but not as Flink's REST API")
    if cluster.split(".")[:2] != flink_version.split(".")[:2]:
        raise RunnerError(
            f"--flink-master {master}: the cluster runs Flink {cluster}, the job server is for Flink "
            f"{flink_version}; pass `-- --flink_version={'.'.join(cluster.split('.')[:2])}` "
            "(Beam supports 1.19, 1.20, 2.0, 2.1, 2.2)"
        )
    return cluster


def _check_java() -> None:
    if shutil.which("java") is None:
        raise RunnerError("the Flink runner needs Java (11 or 17) on PATH to start Beam's job server")


def flink_args(settings: Any, jar: str) -> list[str]:
    """The Beam options Meshline adds for Flink; the user's own (after ``--``) win."""
    user = list(settings.beam_args)
    flink_version = given_option(user, "flink_version") or DEFAULT_FLINK_VERSION
    packaging = bool(given_option(user, "output_executable_path"))
    # A job jar runs under `flink run`, whose cluster is the context's: Beam's [auto]
    # (a HOST:PORT master would make the job submit itself again from the JobManager).
    master = "[auto]" if packaging else settings.flink_master
    args = [f"--flink_master={master}", f"--flink_job_server_jar={jar}"]
    defaults = {
        "flink_version": flink_version,
        # A job jar's Python steps run in a worker pool beside each TaskManager
        # (meshline.runners.worker_pool), not in this process, which is gone by then.
        "environment_type": "EXTERNAL" if packaging else "LOOPBACK",
        "parallelism": "1",
        # The job server's Java expansion service: Meshline expands nothing on it.
        "expansion_port": "-1",
    }
    # spec.execution, else (streaming) the defaults chosen for Flink (meshline.runners.pacing);
    # a batch run keeps Beam's batch bundles unless the file says otherwise.
    paced = pacing("flink", settings.execution) if settings.streaming else pacing("", settings.execution)
    if paced.bundle_size is not None:
        defaults["max_bundle_size"] = str(paced.bundle_size)
    if paced.bundle_time is not None:
        defaults["max_bundle_time_mills"] = str(max(1, round(paced.bundle_time * 1000)))
    if settings.streaming and paced.checkpoint_interval is not None:
        defaults["checkpointing_interval"] = str(max(1, round(paced.checkpoint_interval * 1000)))
    if packaging:
        defaults["environment_config"] = DEFAULT_WORKER_POOL
    args += [f"--{k}={v}" for k, v in defaults.items() if given_option(user, k) is None]
    if settings.streaming and given_option(user, "streaming") is None:
        args.append("--streaming")
    if settings.streaming and given_option(user, "finish_bundle_before_checkpointing") is None:
        # Without it a bundle is finished only by Beam's bundle-time check, and the bundle that
        # hands a source its first element sometimes never finished: its output stayed in the
        # SDK worker and the run delivered nothing (measured: 4 of 4 runs, 0 of 6 with it).
        args.append("--finish_bundle_before_checkpointing")
    return args


def flink_runner(settings: Any) -> tuple[Any, list[str]]:
    """Beam's FlinkRunner, with a provisioned job server, and the options it needs."""
    from apache_beam.options.pipeline_options import FlinkRunnerOptions

    user = list(settings.beam_args)
    flink_version = given_option(user, "flink_version") or DEFAULT_FLINK_VERSION
    supported = FlinkRunnerOptions.PUBLISHED_FLINK_VERSIONS
    if flink_version not in supported:
        raise RunnerError(f"--flink_version {flink_version}: Beam supports Flink {', '.join(supported)}")
    _check_java()
    master = str(settings.flink_master).strip()
    uber_jar = given_option(user, "flink_submit_uber_jar") is not None
    if uber_jar and master not in LOCAL_MASTERS and not settings.allow_exposed:
        raise RunnerError(
            refusal(
                "--flink_submit_uber_jar: Beam then stages the job's artifacts through a server "
                "in this process on all interfaces"
            )
        )
    conf_dir = None
    packaging = bool(given_option(user, "output_executable_path"))
    if packaging:
        master = "[auto]"  # nothing is submitted: the jar is for `flink run` (meshline.runners.flink_jar)
        conf_dir = None if os.environ.get("FLINK_CONF_DIR") else _local_conf_dir()
    elif master not in LOCAL_MASTERS:
        check_cluster(master, flink_version)
    elif not os.environ.get("FLINK_CONF_DIR"):
        conf_dir = _local_conf_dir()
    jar = find_job_server(flink_version)
    if uber_jar and not _is_shaded(jar):
        raise RunnerError(
            f"--flink_submit_uber_jar needs Beam's shaded Flink job-server jar, and {jar} is a launcher "
            "for unshaded jars: set MESHLINE_FLINK_JOB_SERVER_JAR to a shaded one, or drop the option"
        )
    agent = None
    try:
        agent = flink_agent.find_agent()
    except RunnerError:
        if not settings.allow_exposed:
            raise
    return _runner(conf_dir, agent, settings.allow_exposed, jar), flink_args(settings, jar)


#: The job-server JVM's heap unless ``MESHLINE_FLINK_JAVA_OPTS`` sets one. Without a bound the JVM
#: takes a quarter of the machine's memory and a long streaming run's RSS climbs towards it
#: (a 15-minute Kafka soak at 200 events/s: 0.8 → 6.2 GiB on a 24 GiB machine).
DEFAULT_HEAP = "-Xmx1g"
# The client compiler only. Measured with `python -m bench.idle --runner flink`: an idle webhook
# run spent 1.66 of its 4.04 CPU-s a minute in the JIT's compiler threads (still compiling
# 80 s after start) — with C1 only, 0.17 of 2.29; a 200k-event batch on [local] took 22.5
# instead of 27.4 CPU-s (mean of two each, same session): the JVM's share of a Beam pipeline
# is moving bytes, which C2's longer compilations do not pay back.
DEFAULT_JIT = "-XX:TieredStopAtLevel=1"
_JIT = ("-XX:TieredStopAtLevel", "-XX:+TieredCompilation", "-XX:-TieredCompilation", "-Xint", "-Xcomp")
# Flink's two Pekko actor systems (RPC, metrics) each wake a scheduler thread every tick, 10 ms by
# default: 0.47 CPU-s a minute of an idle [local] run. Flink's checkpoints, heartbeats and
# timers do not run on that scheduler's ticks; 100 ms ticks took both threads under 0.01 CPU-s.
DEFAULT_TICK = "-Dpekko.scheduler.tick-duration=100ms"


def java_options(environ: Any = None) -> list[str]:
    """Options for the job-server JVM: ``$MESHLINE_FLINK_JAVA_OPTS`` (shell words), with a
    bounded heap (:data:`DEFAULT_HEAP`) unless they set ``-Xmx`` or a RAM percentage, the client
    compiler only (:data:`DEFAULT_JIT`) unless they choose the compilers, and Pekko scheduler
    ticks of 100 ms (:data:`DEFAULT_TICK`) unless they set them."""
    given = shlex.split((os.environ if environ is None else environ).get("MESHLINE_FLINK_JAVA_OPTS", ""))
    heap = ("-Xmx", "-XX:MaxHeapSize", "-XX:MaxRAMPercentage", "-XX:MaxRAM")
    defaults = [] if any(o.startswith(heap) for o in given) else [DEFAULT_HEAP]
    if not any(o.startswith(_JIT) for o in given):
        defaults.append(DEFAULT_JIT)
    if not any(o.startswith("-Dpekko.scheduler.tick-duration=") for o in given):
        defaults.append(DEFAULT_TICK)
    return [*defaults, *given]


def _is_shaded(jar: str) -> bool:
    """Whether ``jar`` carries the job server's classes itself (not only a manifest Class-Path)."""
    with zipfile.ZipFile(jar) as z:
        return any(n.endswith("FlinkJobServerDriver.class") for n in z.namelist())


def _runner(conf_dir: str | None, agent: Path | None, allow: bool, job_server_jar: str) -> Any:
    from apache_beam.options.pipeline_options import FlinkRunnerOptions, PortableOptions
    from apache_beam.runners.portability.flink_runner import MAGIC_HOST_NAMES, FlinkJarJobServer, FlinkRunner

    class _JobServer(GuardedCommand, FlinkJarJobServer):  # type: ignore[misc]
        """The JVM dies with Meshline, even on SIGKILL, and listens on loopback only.

        Beam's gRPC servers in it bind loopback through Meshline's agent; Flink's own, for
        [local], through Meshline's Flink config.
        """

        server_name = "Beam's Flink job server"
        confined = agent is not None
        allow_exposed = allow
        flink_conf_dir: str | None = None

        def server_command(self, cmd: list[str]) -> list[str]:
            confine = flink_agent.agent_options(agent) if agent is not None else []
            return [cmd[0], *java_options(), *confine, *cmd[1:]]

        def java_arguments(
            self, job_port: Any, artifact_port: Any, expansion_port: Any, artifacts_dir: Any
        ) -> Any:
            args = super().java_arguments(job_port, artifact_port, expansion_port, artifacts_dir)
            return [*args, "--flink-conf-dir", self.flink_conf_dir] if self.flink_conf_dir else args

    class MeshlineFlinkRunner(FlinkRunner):  # type: ignore[misc]
        """FlinkRunner whose job server dies with Meshline and, like its worker pool, stays on loopback."""

        start_and_replace_loopback_environments = staticmethod(start_loopback_workers)
        _master = "[local]"
        _server: Any = None
        #: The job jar this run wrote (``--output_executable_path``), once written.
        packaged: str | None = None

        def run_pipeline(self, pipeline: Any, options: Any) -> Any:
            """Runs the job; or, with ``--output_executable_path``, writes its self-contained jar."""
            result = super().run_pipeline(pipeline, options)
            path = options.view_as(PortableOptions).output_executable_path
            if path:
                result.wait_until_finish()  # the job server wrote the jar: the "job" is done
                if not os.path.isfile(path):
                    raise RunnerError(f"--output_executable_path: Beam's job server did not write {path}")
                flink_jar.make_self_contained(path, job_server_jar)
                self.packaged = os.path.abspath(path)
            return result

        def default_job_server(self, options: Any) -> Any:
            flink = options.view_as(FlinkRunnerOptions)
            master = self.add_http_scheme(flink.flink_master)
            self._master = master
            if flink.flink_submit_uber_jar and master not in MAGIC_HOST_NAMES:
                return super().default_job_server(options)  # refused before, unless allowed
            flink.flink_master = master
            server = _JobServer(options)
            if master in LOCAL_MASTERS:
                server.flink_conf_dir = conf_dir
            self._server = server
            return quiet_stop_on_exit(server)

        def create_job_service_handle(self, job_service: Any, options: Any) -> Any:
            return job_service_handle(job_service, options)

        def drainer(self, job_name: str, say: Any) -> Drainer:
            """Drains the streaming job once its sources have all ended (:mod:`.flink_drain`)."""
            if self._master not in LOCAL_MASTERS:
                url = _rest_url(self._master)
                return Drainer(lambda: url, job_name, say, remote=True).start()
            server = self._server
            return Drainer(lambda: find_local_rest(server._port), job_name, say, remote=False).start()

    return MeshlineFlinkRunner()
