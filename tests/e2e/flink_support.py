"""A standalone Flink cluster (one JobManager, one TaskManager) on 127.0.0.1, for the Flink e2e tests.

The distribution comes from PyPI: the ``apache-flink`` wheel carries ``bin/`` and
``conf/``, ``apache-flink-libraries`` carries ``lib/flink-dist-*.jar``. They pin
an old apache-beam, so they go with ``--no-deps`` into their own directory,
``$MESHLINE_CACHE/flink-dist/apache-flink-VERSION/`` (``~/.cache/meshline/…``),
never into the project's virtualenv. The patch version may differ from the Flink
the job server was built against; the minor version must match.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from meshline.errors import RunnerError
from meshline.runners import flink_agent
from tests.harness import free_port, one_at_a_time

__all__ = [
    "FLINK_DIST_VERSION",
    "FlinkCluster",
    "flink_cluster",
    "flink_home",
    "flink_job_server",
    "running_cluster",
]

FLINK_DIST_VERSION = "1.19.3"
STARTUP_TIMEOUT_S = 90.0


def flink_job_server() -> str:
    """Beam's Flink job-server jar, provisioned before any run is timed (Maven assembles it once into
    the cache). Java 17 and Maven are prerequisites of ``make test`` like Python: without them the
    Flink tests fail here, naming what is missing, rather than being skipped unseen."""
    import pytest

    from meshline.runners import flink

    if shutil.which("java") is None:
        pytest.fail(
            "the Flink tests need Java (17) on PATH: install a JDK, e.g. apt-get install openjdk-17-jdk"
        )
    try:
        return flink.find_job_server(provision=False)
    except RunnerError:
        if shutil.which("mvn") is None:
            pytest.fail("no Flink job server in the cache and no mvn to assemble one: apt-get install maven")
    return flink.find_job_server()


def _cache() -> Path:
    base = os.environ.get("MESHLINE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "meshline")
    return Path(base) / "flink-dist"


@one_at_a_time("flink-dist")
def flink_home(version: str = FLINK_DIST_VERSION) -> Path:
    """FLINK_HOME of a Flink distribution from PyPI; installs it (about 230 MB) the first time."""
    target = _cache() / f"apache-flink-{version}"
    home = target / "pyflink"
    if not (home / "bin" / "jobmanager.sh").is_file() or not list((home / "lib").glob("flink-dist-*.jar")):
        staging = target.with_name(f".{target.name}.{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--target",
                str(staging),
                f"apache-flink=={version}",
                f"apache-flink-libraries=={version}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            raise RuntimeError(f"pip could not install apache-flink=={version}: {proc.stderr.strip()[-500:]}")
        shutil.rmtree(target, ignore_errors=True)
        os.rename(staging, target)
    for script in (home / "bin").iterdir():
        if script.suffix == ".sh" or script.name == "flink":
            script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return home


def _flat(tree: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flat(value, name + "."))
        else:
            out[name] = value
    return out


def _write_conf(home: Path, conf_dir: Path, rest_port: int, extra: dict[str, object] | None = None) -> None:
    """The distribution's config.yaml with every listener on 127.0.0.1 and free ports, then ``extra``."""
    conf_dir.mkdir(parents=True, exist_ok=True)
    for f in (home / "conf").iterdir():
        if f.is_file():
            shutil.copy(f, conf_dir / f.name)
    base = yaml.safe_load((home / "conf" / "config.yaml").read_text()) or {}
    conf = _flat(base)
    conf.update(
        {
            "jobmanager.rpc.address": "127.0.0.1",
            "jobmanager.rpc.port": free_port(),
            "jobmanager.bind-host": "127.0.0.1",
            "jobmanager.memory.process.size": "1024m",
            "taskmanager.host": "127.0.0.1",
            "taskmanager.bind-host": "127.0.0.1",
            "taskmanager.memory.process.size": "1280m",
            "taskmanager.numberOfTaskSlots": 2,
            "rest.address": "127.0.0.1",
            "rest.bind-address": "127.0.0.1",
            "rest.port": rest_port,
            # A test cluster lives for one run: the C1 compiler alone and a serial collector
            # bring a cluster up on 6 CPU-s instead of 11 (ready + 10 s, measured on 2 cores).
            "env.java.opts.all": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
        }
    )
    # Beam's Fn API servers run in the TaskManager and bind all interfaces; Meshline's agent moves them.
    try:
        conf["env.java.opts.taskmanager"] = " ".join(flink_agent.agent_options(flink_agent.find_agent()))
    except RunnerError:
        pass  # no javac or mvn: the test cluster's TaskManager listens more widely than it should
    conf.update(extra or {})
    (conf_dir / "config.yaml").write_text(yaml.safe_dump(conf, default_flow_style=False))


def _ready(rest: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"{rest}/taskmanagers", timeout=2) as r:
            managers = json.loads(r.read()).get("taskmanagers", [])
    except (OSError, ValueError):
        return False
    return any(m.get("freeSlots", 0) > 0 for m in managers)


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)


@dataclass
class FlinkCluster:
    """A running standalone cluster: its REST address, and its TaskManager to kill and replace."""

    master: str  # HOST:PORT of the REST endpoint
    home: Path
    env: dict[str, str]  # FLINK_CONF_DIR and friends, for bin/flink and the daemons
    log_dir: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    started: int = 0

    def start(self, role: str) -> subprocess.Popen[bytes]:
        """Start ``role`` (jobmanager, taskmanager) in the foreground, in its own process group."""
        self.started += 1
        with open(self.log_dir / f"{role}-{self.started}.out", "wb") as out:
            # start-foreground execs java: the Popen's pid is the JVM's.
            proc = subprocess.Popen(
                ["bash", str(self.home / "bin" / f"{role}.sh"), "start-foreground"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs[f"{role}-{self.started}"] = proc
        return proc

    def kill_taskmanagers(self) -> None:
        """SIGKILL every TaskManager, as a lost node would end."""
        for name, proc in self.procs.items():
            if name.startswith("taskmanager") and proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT_S) -> None:
        """Until a TaskManager with a free slot has registered."""
        deadline = time.monotonic() + timeout
        while not _ready(f"http://{self.master}"):
            dead = [p for p in self.procs.values() if p.poll() is not None and p.returncode != -9]
            if dead or time.monotonic() > deadline:
                logs = "\n".join(p.read_text()[-2000:] for p in sorted(self.log_dir.glob("*.out")))
                raise RuntimeError(f"the Flink cluster did not come up; its output:\n{logs}")
            time.sleep(0.5)

    def flink(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        """``bin/flink ARGS`` (Flink's own CLI) against this cluster."""
        cmd = ["bash", str(self.home / "bin" / "flink"), *args]
        return subprocess.run(
            cmd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            start_new_session=True,
        )


@contextmanager
def running_cluster(
    workdir: Path, version: str = FLINK_DIST_VERSION, conf: dict[str, object] | None = None
) -> Iterator[FlinkCluster]:
    """A JobManager and a TaskManager bound to 127.0.0.1, as a :class:`FlinkCluster`."""
    home = flink_home(version)
    rest_port = free_port()
    conf_dir, log_dir = workdir / "conf", workdir / "log"
    _write_conf(home, conf_dir, rest_port, conf)
    log_dir.mkdir(parents=True, exist_ok=True)
    env = dict(
        os.environ, FLINK_CONF_DIR=str(conf_dir), FLINK_LOG_DIR=str(log_dir), FLINK_PID_DIR=str(workdir)
    )
    env.pop("FLINK_HOME", None)
    cluster = FlinkCluster(f"127.0.0.1:{rest_port}", home, env, log_dir)
    try:
        for role in ("jobmanager", "taskmanager"):
            cluster.start(role)
        cluster.wait_ready()
        yield cluster
    finally:
        _stop(list(cluster.procs.values()))


@contextmanager
def flink_cluster(
    workdir: Path, version: str = FLINK_DIST_VERSION, conf: dict[str, object] | None = None
) -> Iterator[str]:
    """Start a JobManager and a TaskManager bound to 127.0.0.1; yields the master's HOST:PORT.

    ``conf``: more Flink configuration (e.g. a metrics reporter), over the test cluster's own.
    """
    with running_cluster(workdir, version, conf) as cluster:
        yield cluster.master
