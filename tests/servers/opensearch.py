"""A single-node OpenSearch 2.19 on 127.0.0.1, assembled from Maven Central jars.

OpenSearch publishes no runnable tarball on a package registry, but Maven Central
serves the server jar (``org.opensearch:opensearch``) and its HTTP transport
module (``org.opensearch.plugin:transport-netty4-client``). The first use runs
``mvn dependency:copy-dependencies`` into ``~/.cache/meshline/opensearch/VERSION/``
(``lib/`` and ``modules/transport-netty4/`` with a written plugin descriptor),
about 45 MB, reused afterwards.

Each start copies that home into a fresh temporary directory (the node writes its
keystore into ``config/``), binds HTTP and transport to 127.0.0.1 on free ports
(security plugin absent: plain HTTP, no auth), ``discovery.type: single-node``,
``-Xmx512m``. OpenSearch refuses to run as root: as root the node runs as the
system user ``meshline`` (created with ``useradd`` when missing).

Run ``python -m tests.servers.opensearch`` to start one by hand (prints the URL).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

VERSION = os.environ.get("MESHLINE_OPENSEARCH_VERSION", "2.19.6")
CACHE = Path(os.environ.get("MESHLINE_CACHE", Path.home() / ".cache" / "meshline")) / "opensearch"
RUN_AS = "meshline"

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.meshline.test</groupId><artifactId>{artifact}</artifactId><version>1</version>
  <dependencies>{deps}</dependencies>
</project>
"""
_DEP = "<dependency><groupId>{g}</groupId><artifactId>{a}</artifactId><version>{v}</version></dependency>"

_LIB = (
    ("org.opensearch", "opensearch", VERSION),
    ("org.opensearch", "opensearch-plugin-classloader", VERSION),
    # the server declares log4j-api only; the node's logging needs the core of the same version
    ("org.apache.logging.log4j", "log4j-core", "2.25.4"),
)
_MODULES = {
    "transport-netty4": (
        ("org.opensearch.plugin", "transport-netty4-client", VERSION),
        "org.opensearch.transport.Netty4Plugin",
        'permission java.net.SocketPermission "*", "accept,connect,resolve";\n'
        '  permission java.lang.RuntimePermission "setContextClassLoader";',
    ),
}

_LOG4J = """status = error
appender.console.type = Console
appender.console.name = console
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d{ISO8601}][%-5p][%-25c{1.}] %m%n
rootLogger.level = warn
rootLogger.appenderRef.console.ref = console
logger.node.name = org.opensearch.node
logger.node.level = info
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _mvn_copy(workdir: Path, artifact: str, deps: tuple[tuple[str, str, str], ...], out: Path) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    body = "".join(_DEP.format(g=g, a=a, v=v) for g, a, v in deps)
    (workdir / "pom.xml").write_text(_POM.format(artifact=artifact, deps=body))
    mvn = shutil.which("mvn")
    if mvn is None:
        raise RuntimeError("Maven (mvn) is needed to assemble the OpenSearch test node")
    cmd = [mvn, "-q", "-B", "dependency:copy-dependencies", f"-DoutputDirectory={out}"]
    cmd.append("-DincludeScope=runtime")
    done = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0:
        output = done.stdout[-2000:] + done.stderr[-2000:]
        raise RuntimeError(f"mvn failed assembling OpenSearch {VERSION}: {output}")


def provision() -> Path:
    """The cached OpenSearch home (lib/, modules/); assembled on first use."""
    home = CACHE / VERSION
    marker = home / ".complete"
    if marker.exists():
        return home
    staging = CACHE / f".{VERSION}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    _mvn_copy(staging / "pom-lib", "lib", _LIB, staging / "home" / "lib")
    for name, ((g, a, v), classname, permissions) in _MODULES.items():
        folder = staging / "home" / "modules" / name
        _mvn_copy(staging / f"pom-{name}", name, ((g, a, v),), folder)
        (folder / "plugin-descriptor.properties").write_text(
            f"description={name} (assembled by meshline tests)\nversion={VERSION}\nname={name}\n"
            f"classname={classname}\njava.version=17\nopensearch.version={VERSION}\n"
            "extended.plugins=\nhas.native.controller=false\n"
        )
        (folder / "plugin-security.policy").write_text(f"grant {{\n  {permissions}\n}};\n")
    (staging / "home" / ".complete").write_text(VERSION)
    shutil.rmtree(home, ignore_errors=True)
    home.parent.mkdir(parents=True, exist_ok=True)
    (staging / "home").rename(home)
    shutil.rmtree(staging, ignore_errors=True)
    return home


def _run_as_user() -> tuple[list[str], int | None, int | None]:
    """The command prefix (and uid/gid to own the node's files) when we are root."""
    if os.geteuid() != 0:
        return [], None, None
    try:
        pw = pwd.getpwnam(RUN_AS)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", RUN_AS],
            check=True,
            capture_output=True,
        )
        pw = pwd.getpwnam(RUN_AS)
    return ["runuser", "-u", RUN_AS, "--"], pw.pw_uid, pw.pw_gid


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    os.chown(root, uid, gid)
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            os.chown(os.path.join(dirpath, n), uid, gid, follow_symlinks=False)


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def _get(url: str, timeout: float = 2.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return bytes(r.read())


@contextmanager
def opensearch_node(timeout: float = 120, heap: str = "768m") -> Iterator[str]:
    """Start a node; yields ``http://127.0.0.1:PORT``; stops it and removes its data."""
    cached = provision()
    prefix, uid, gid = _run_as_user()
    java = shutil.which("java") or "java"
    with tempfile.TemporaryDirectory(prefix="meshline-opensearch-") as tmp:
        os.chmod(tmp, 0o755)
        home = Path(tmp) / "home"
        shutil.copytree(cached, home)
        for d in ("config", "data", "logs", "bin", "plugins"):
            (home / d).mkdir(exist_ok=True)
        port, transport = free_port(), free_port()
        (home / "config" / "opensearch.yml").write_text(
            "cluster.name: meshline-test\nnode.name: node-1\nnetwork.host: 127.0.0.1\n"
            f"http.port: {port}\ntransport.port: {transport}\ndiscovery.type: single-node\n"
            # a busy test machine's disk may be fuller than the default watermarks allow
            "cluster.routing.allocation.disk.threshold_enabled: false\n"
            "action.auto_create_index: true\n"
        )
        (home / "config" / "log4j2.properties").write_text(_LOG4J)
        (home / "config" / "jvm.options").write_text("")
        if uid is not None and gid is not None:
            _chown_tree(home, uid, gid)
        log_path = Path(tmp) / "node.log"
        log = open(log_path, "wb")  # noqa: SIM115 - closed below
        cmd = [
            *prefix,
            java,
            f"-Xms{heap}",
            f"-Xmx{heap}",
            "-Djava.security.manager=allow",
            "-Dlog4j2.disable.jmx=true",
            f"-Dopensearch.path.home={home}",
            f"-Dopensearch.path.conf={home / 'config'}",
            "-Dopensearch.distribution.type=tar",
            "-Dopensearch.bundled_jdk=false",
            f"-Djava.io.tmpdir={home / 'data'}",
            "-cp",
            f"{home / 'lib'}/*",
            "org.opensearch.bootstrap.OpenSearch",
            "-E",
            f"path.data={home / 'data'}",
            "-E",
            f"path.logs={home / 'logs'}",
        ]
        proc = subprocess.Popen(cmd, cwd=home, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    tail = log_path.read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"OpenSearch exited with {proc.returncode}:\n{tail}")
                try:
                    _get(url + "/_cluster/health?wait_for_status=yellow&timeout=1s")
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        tail = log_path.read_text(errors="replace")[-3000:]
                        raise RuntimeError(f"OpenSearch did not start in {timeout}s:\n{tail}") from None
                    time.sleep(0.5)
            yield url
        finally:
            # the node runs under runuser in its own process group: signal the group
            _signal_group(proc, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait()
            log.close()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _interrupt)  # stop the node on kill PID too
    with opensearch_node() as node_url:
        print(node_url, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
