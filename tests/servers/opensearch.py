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
import shutil
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.harness import one_at_a_time
from tests.servers.search import mvn_copy, search_node

VERSION = os.environ.get("MESHLINE_OPENSEARCH_VERSION", "2.19.6")
CACHE = Path(os.environ.get("MESHLINE_CACHE", Path.home() / ".cache" / "meshline")) / "opensearch"

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


@one_at_a_time("opensearch")
def provision() -> Path:
    """The cached OpenSearch home (lib/, modules/); assembled on first use."""
    home = CACHE / VERSION
    marker = home / ".complete"
    if marker.exists():
        return home
    staging = CACHE / f".{VERSION}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    mvn_copy(staging / "pom-lib", "lib", _LIB, staging / "home" / "lib", f"OpenSearch {VERSION}")
    for name, ((g, a, v), classname, permissions) in _MODULES.items():
        folder = staging / "home" / "modules" / name
        mvn_copy(staging / f"pom-{name}", name, ((g, a, v),), folder, f"OpenSearch {VERSION}")
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


@contextmanager
def opensearch_node(timeout: float = 120, heap: str = "768m") -> Iterator[str]:
    """Start a node; yields ``http://127.0.0.1:PORT``; stops it and removes its data."""
    cached = provision()
    java = shutil.which("java") or "java"

    def command(home: Path) -> list[str]:
        return [
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

    with search_node(
        "OpenSearch",
        cached,
        config="opensearch.yml",
        settings=lambda home: "action.auto_create_index: true\n",
        log4j=_LOG4J,
        command=command,
        dirs=("config", "data", "logs", "bin", "plugins"),
        timeout=timeout,
    ) as url:
        yield url


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
