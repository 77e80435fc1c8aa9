"""A single-node Elasticsearch 8.15 on 127.0.0.1, assembled from Maven Central jars.

Maven Central serves the Elasticsearch 8 server (``org.elasticsearch:elasticsearch``)
and its HTTP module (``org.elasticsearch.plugin:transport-netty4``), not the
distribution. The first use assembles ``~/.cache/meshline/elasticsearch/VERSION/``:

- ``lib/``: the server and its dependencies (``mvn dependency:copy-dependencies``),
  started on the module path as the real launcher does;
- ``modules/transport-netty4/`` with a written plugin descriptor;
- two tiny classes compiled here with ``javac``: a launcher that hands the node its
  ``ServerArgs`` on stdin (the job of the server CLI, which is not published) and a
  no-op ANSI console loader (``lib/tools/ansi-console``).

Not in this node: x-pack (no security, API keys or data streams) and the
``rest-root`` module (``GET /`` answers 405; the target then assumes
Elasticsearch). Enough for ``_bulk``, indices, mappings and ``_count``.

Like OpenSearch it refuses to run as root: as root it runs as the user ``meshline``.
Run ``python -m tests.servers.elasticsearch`` to start one by hand (prints the URL).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.harness import one_at_a_time
from tests.servers.search import mvn_copy, search_node

VERSION = os.environ.get("MESHLINE_ELASTICSEARCH_VERSION", "8.15.0")
CACHE = Path(os.environ.get("MESHLINE_CACHE", Path.home() / ".cache" / "meshline")) / "elasticsearch"

_LAUNCHER = """import java.io.*;
import java.lang.reflect.Method;
import java.nio.file.*;
import org.elasticsearch.bootstrap.ServerArgs;
import org.elasticsearch.common.io.stream.OutputStreamStreamOutput;
import org.elasticsearch.common.settings.KeyStoreWrapper;
import org.elasticsearch.common.settings.Settings;

/** Starts a node without the server CLI: writes ServerArgs ahead of the real stdin. */
public class MeshlineEsLauncher {
    public static void main(String[] args) throws Exception {
        Path home = Paths.get(System.getProperty("es.path.home"));
        Path conf = Paths.get(System.getProperty("es.path.conf"));
        Settings.Builder b = Settings.builder();
        b.put("path.home", home.toString());
        // flat "key: value" lines: parsing YAML here would need logging the node has not set up yet
        for (String line : Files.readAllLines(conf.resolve("elasticsearch.yml"))) {
            int colon = line.indexOf(':');
            if (line.isBlank() || line.startsWith("#") || colon < 0) continue;
            b.put(line.substring(0, colon).trim(), line.substring(colon + 1).trim());
        }
        ServerArgs sa = new ServerArgs(false, false, null, KeyStoreWrapper.create(), b.build(), conf,
            home.resolve("logs"));
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (OutputStreamStreamOutput out = new OutputStreamStreamOutput(bytes)) {
            sa.writeTo(out);
        }
        // the node stops when its stdin closes, as under the real CLI
        System.setIn(new SequenceInputStream(new ByteArrayInputStream(bytes.toByteArray()), System.in));
        Method main = Class.forName("org.elasticsearch.bootstrap.Elasticsearch")
            .getDeclaredMethod("main", String[].class);
        main.setAccessible(true);
        main.invoke(null, (Object) new String[0]);
    }
}
"""

_CONSOLE = """package org.elasticsearch.io.ansi;

import java.util.function.Supplier;
import org.elasticsearch.bootstrap.ConsoleLoader;

/** No terminal console for a test node. */
public class AnsiConsoleLoader implements Supplier<ConsoleLoader.Console> {
    public ConsoleLoader.Console get() { return null; }
}
"""

_POLICY = """grant {
  permission java.net.SocketPermission "*", "accept,connect,resolve";
  permission java.lang.RuntimePermission "setContextClassLoader";
  permission java.lang.RuntimePermission "accessDeclaredMembers";
  permission java.lang.reflect.ReflectPermission "suppressAccessChecks";
};
"""

_LOG4J = """status = error
appender.console.type = Console
appender.console.name = console
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d{ISO8601}][%-5p][%-25c{1.}] %m%n
rootLogger.level = warn
rootLogger.appenderRef.console.ref = console
"""


def _javac(src_dir: Path, out_dir: Path, classpath: str) -> None:
    javac = shutil.which("javac")
    if javac is None:
        raise RuntimeError("javac (a JDK) is needed to assemble the Elasticsearch test node")
    sources = [str(p) for p in src_dir.rglob("*.java")]
    done = subprocess.run(
        [javac, "-cp", classpath, "-d", str(out_dir), *sources], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"javac failed: {done.stderr[-2000:]}")


def _jar(classes: Path, jar_path: Path) -> None:
    jar = shutil.which("jar") or "jar"
    jar_path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([jar, "cf", str(jar_path), "-C", str(classes), "."], check=True, capture_output=True)


@one_at_a_time("elasticsearch")
def provision() -> Path:
    """The cached Elasticsearch home; assembled on first use."""
    home = CACHE / VERSION
    if (home / ".complete").exists():
        return home
    staging = CACHE / f".{VERSION}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    h = staging / "home"
    what = f"Elasticsearch {VERSION}"
    mvn_copy(staging / "pom-lib", "lib", (("org.elasticsearch", "elasticsearch", VERSION),), h / "lib", what)
    module = h / "modules" / "transport-netty4"
    netty = (("org.elasticsearch.plugin", "transport-netty4", VERSION),)
    mvn_copy(staging / "pom-netty", "netty", netty, module, what)
    for jar in module.glob("*.jar"):
        if (h / "lib" / jar.name).exists():
            jar.unlink()  # the server already has it (jar hell otherwise)
    (module / "plugin-descriptor.properties").write_text(
        f"description=transport-netty4 (assembled by meshline tests)\nversion={VERSION}\n"
        "name=transport-netty4\nclassname=org.elasticsearch.transport.netty4.Netty4Plugin\n"
        f"java.version=17\nelasticsearch.version={VERSION}\nextended.plugins=\n"
        "has.native.controller=false\nmodulename=org.elasticsearch.transport.netty4\n"
    )
    (module / "plugin-security.policy").write_text(_POLICY)
    src = staging / "src"
    (src / "launcher").mkdir(parents=True)
    (src / "launcher" / "MeshlineEsLauncher.java").write_text(_LAUNCHER)
    ansi = src / "console" / "org" / "elasticsearch" / "io" / "ansi"
    ansi.mkdir(parents=True)
    (ansi / "AnsiConsoleLoader.java").write_text(_CONSOLE)
    cp = f"{h / 'lib'}/*"
    _javac(src / "launcher", staging / "classes-launcher", cp)
    _javac(src / "console", staging / "classes-console", cp)
    _jar(staging / "classes-launcher", h / "meshline-es-launcher.jar")
    _jar(staging / "classes-console", h / "lib" / "tools" / "ansi-console" / "meshline-console.jar")
    (h / ".complete").write_text(VERSION)
    shutil.rmtree(home, ignore_errors=True)
    home.parent.mkdir(parents=True, exist_ok=True)
    h.rename(home)
    shutil.rmtree(staging, ignore_errors=True)
    return home


@contextmanager
def elasticsearch_node(timeout: float = 120, heap: str = "768m") -> Iterator[str]:
    """Start a node; yields ``http://127.0.0.1:PORT``; stops it and removes its data."""
    cached = provision()
    java = shutil.which("java") or "java"

    def command(home: Path) -> list[str]:
        return [
            "env",
            f"LIBFFI_TMPDIR={home / 'data'}",
            java,
            f"-Xms{heap}",
            f"-Xmx{heap}",
            "-Dlog4j2.disable.jmx=true",
            "-Djava.security.manager=allow",
            f"-Des.path.home={home}",
            f"-Des.path.conf={home / 'config'}",
            "-Des.distribution.type=tar",
            f"-Djava.io.tmpdir={home / 'data'}",
            "--module-path",
            str(home / "lib"),
            "--add-modules=ALL-MODULE-PATH",
            "--add-exports",
            "org.elasticsearch.server/org.elasticsearch.bootstrap=ALL-UNNAMED",
            "--add-opens",
            "org.elasticsearch.server/org.elasticsearch.bootstrap=ALL-UNNAMED",
            "-cp",
            str(home / "meshline-es-launcher.jar"),
            "MeshlineEsLauncher",
        ]

    with search_node(
        "Elasticsearch",
        cached,
        config="elasticsearch.yml",
        settings=lambda home: f"path.data: {home / 'data'}\npath.logs: {home / 'logs'}\n",
        log4j=_LOG4J,
        command=command,
        dirs=("config", "data", "logs", "plugins"),
        stdin=True,  # the node stops when its stdin closes, as under the real CLI
        timeout=timeout,
    ) as url:
        yield url


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _interrupt)
    with elasticsearch_node() as node_url:
        print(node_url, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
