"""What the OpenSearch and Elasticsearch test nodes share (tests/servers/opensearch.py and
elasticsearch.py): jars from Maven Central, a home copied afresh for each start, a user other
than root, and the node process on 127.0.0.1 until it reports yellow health.

Each module keeps what differs: which jars, how its home is assembled, how its JVM starts.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.harness import free_port, one_at_a_time, serving

RUN_AS = "meshline"  # neither node runs as root

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.meshline.test</groupId><artifactId>{artifact}</artifactId><version>1</version>
  <dependencies>{deps}</dependencies>
</project>
"""
_DEP = "<dependency><groupId>{g}</groupId><artifactId>{a}</artifactId><version>{v}</version></dependency>"


def mvn_copy(
    workdir: Path, artifact: str, deps: tuple[tuple[str, str, str], ...], out: Path, what: str
) -> None:
    """``deps`` and their runtime dependencies copied into ``out`` (``mvn dependency:copy-dependencies``)."""
    workdir.mkdir(parents=True, exist_ok=True)
    body = "".join(_DEP.format(g=g, a=a, v=v) for g, a, v in deps)
    (workdir / "pom.xml").write_text(_POM.format(artifact=artifact, deps=body))
    mvn = shutil.which("mvn")
    if mvn is None:
        raise RuntimeError(f"Maven (mvn) is needed to assemble the {what} test node")
    cmd = [mvn, "-q", "-B", "dependency:copy-dependencies", f"-DoutputDirectory={out}"]
    cmd.append("-DincludeScope=runtime")
    done = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0:
        output = done.stdout[-2000:] + done.stderr[-2000:]
        raise RuntimeError(f"mvn failed assembling {what}: {output}")


@one_at_a_time("useradd")
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


def _get(url: str, timeout: float = 2.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return bytes(r.read())


@contextmanager
def search_node(
    what: str,
    cached: Path,
    *,
    config: str,
    settings: Callable[[Path], str],
    log4j: str,
    command: Callable[[Path], list[str]],
    dirs: tuple[str, ...],
    stdin: bool = False,
    timeout: float = 120,
) -> Iterator[str]:
    """A single node from a copy of the ``cached`` home; yields ``http://127.0.0.1:PORT``.

    ``config`` names the node's settings file (in ``config/``): the settings both nodes need,
    then ``settings(home)``. ``command(home)`` is the JVM's command line; with ``stdin`` the node
    reads a pipe and stops when it closes (Elasticsearch, as under its own CLI). The node, its
    data and its logs are gone when the block ends.
    """
    prefix, uid, gid = _run_as_user()
    with tempfile.TemporaryDirectory(prefix=f"meshline-{what.lower()}-") as tmp:
        os.chmod(tmp, 0o755)
        home = Path(tmp) / "home"
        shutil.copytree(cached, home)
        for d in dirs:
            (home / d).mkdir(exist_ok=True)
        port, transport = free_port(), free_port()
        (home / "config" / config).write_text(
            "cluster.name: meshline-test\nnode.name: node-1\nnetwork.host: 127.0.0.1\n"
            f"http.port: {port}\ntransport.port: {transport}\ndiscovery.type: single-node\n"
            # a busy test machine's disk may be fuller than the default watermarks allow
            "cluster.routing.allocation.disk.threshold_enabled: false\n" + settings(home)
        )
        (home / "config" / "log4j2.properties").write_text(log4j)
        (home / "config" / "jvm.options").write_text("")
        if uid is not None and gid is not None:
            _chown_tree(home, uid, gid)
        url = f"http://127.0.0.1:{port}"
        with serving(
            [*prefix, *command(home)],
            ready=lambda: bool(_get(url + "/_cluster/health?wait_for_status=yellow&timeout=1s")),
            log=Path(tmp) / "node.log",
            what=what,
            timeout=timeout,
            cwd=home,
            stdin=subprocess.PIPE if stdin else None,
        ):
            yield url
