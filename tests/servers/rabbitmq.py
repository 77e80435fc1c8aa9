"""A private RabbitMQ broker on 127.0.0.1, from Debian's packages, provisioned on first use.

No system install: the ``rabbitmq-server`` and ``erlang-*`` packages are fetched
with ``apt-get download`` into ``~/.cache/meshline/rabbitmq/apt/`` and unpacked
with ``dpkg-deb -x`` into ``~/.cache/meshline/rabbitmq/root/`` (Erlang's start
scripts get their ``ROOTDIR`` pointed there). Both are reused by later runs.
When apt's package lists are empty, ``apt-get update`` runs first (as root).

Each broker gets a unique node name, free AMQP and distribution ports, its own
``epmd`` on a private port (started and stopped here, never a shared daemon),
no plugins, and its data and logs in a temporary directory. The default
``guest``/``guest`` user may log in because it connects over loopback.
``MESHLINE_RABBITMQ_ROOT`` points at another unpacked tree.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.harness import dies_with_us, free_port, one_at_a_time

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "meshline" / "rabbitmq"
ERLANG_BIN = "usr/lib/erlang/bin"
SERVER = "usr/lib/rabbitmq/bin/rabbitmq-server"
_READY = ".meshline-ready"


def _run(cmd: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)


def _packages() -> list[str]:
    """rabbitmq-server and the Erlang packages it needs (recursively), from apt's lists."""
    r = _run(
        [
            "apt-cache",
            "depends",
            "--recurse",
            "--no-recommends",
            "--no-suggests",
            "--no-conflicts",
            "--no-breaks",
            "--no-replaces",
            "--no-enhances",
            "rabbitmq-server",
        ]
    )
    names = {line.strip() for line in r.stdout.splitlines() if line and not line.startswith(" ")}
    return sorted(n for n in names if n == "rabbitmq-server" or n.startswith("erlang-"))


def _download(apt_dir: Path) -> None:
    apt_dir.mkdir(parents=True, exist_ok=True)
    packages = _packages()
    if "rabbitmq-server" not in packages and os.geteuid() == 0:
        _run(["apt-get", "update", "-qq"])  # a fresh machine may have no package lists yet
        packages = _packages()
    if "rabbitmq-server" not in packages:
        raise RuntimeError(
            "apt knows no rabbitmq-server package: run 'apt-get update' (as root) "
            "or set MESHLINE_RABBITMQ_ROOT"
        )
    r = _run(["apt-get", "download", *packages], cwd=apt_dir)
    if r.returncode != 0:
        raise RuntimeError(f"apt-get download failed: {r.stderr.strip()[-2000:]}")


def _patch_erlang(staging: Path, final: Path) -> None:
    """Erlang's start scripts hard-code ROOTDIR=/usr/lib/erlang; point them at the final tree."""
    erlang = staging / "usr/lib/erlang"
    for script in [*erlang.glob("bin/*"), *erlang.glob("erts-*/bin/*")]:
        if script.is_file() and not script.is_symlink() and script.name in ("erl", "start"):
            text = script.read_text()
            script.write_text(text.replace("ROOTDIR=/usr/lib/erlang", f"ROOTDIR={final}/usr/lib/erlang"))


@one_at_a_time("rabbitmq")
def provision() -> Path:
    """The unpacked tree (``.../root``), downloading and unpacking it the first time."""
    explicit = os.environ.get("MESHLINE_RABBITMQ_ROOT")
    if explicit:
        return Path(explicit)
    root = CACHE / "root"
    if (root / _READY).exists():
        return root
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test process may be provisioning too
        if (root / _READY).exists():
            return root
        apt_dir = CACHE / "apt"
        if not list(apt_dir.glob("rabbitmq-server_*.deb")):
            _download(apt_dir)
        staging = Path(tempfile.mkdtemp(prefix="root-", dir=CACHE))
        for deb in sorted(apt_dir.glob("*.deb")):
            if deb.name.startswith(("erlang-", "rabbitmq-server_")):
                r = _run(["dpkg-deb", "-x", str(deb), str(staging)])
                if r.returncode != 0:
                    raise RuntimeError(f"dpkg-deb -x {deb.name} failed: {r.stderr.strip()}")
        _patch_erlang(staging, root)
        (staging / _READY).write_text("ok\n")
        if root.exists():
            shutil.rmtree(root)
        staging.rename(root)
    return root


@dataclass(frozen=True)
class Broker:
    host: str
    port: int
    node: str
    env: dict[str, str]
    root: Path

    def url(self, vhost: str = "/") -> str:
        from urllib.parse import quote

        return f"amqp://guest:guest@{self.host}:{self.port}/{quote(vhost, safe='')}"

    def ctl(self, *args: str) -> str:
        """``rabbitmqctl ARGS`` against this node (e.g. add_vhost)."""
        r = subprocess.run(
            [str(self.root / "usr/lib/rabbitmq/bin/rabbitmqctl"), "-n", self.node, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if r.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)}: {r.stderr.strip() or r.stdout.strip()}")
        return r.stdout


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)  # its own session: the start script and beam.smp
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@contextmanager
def rabbitmq_server(timeout: float = 90) -> Iterator[Broker]:
    """Start a broker; yields a :class:`Broker`; stops it (and its epmd) afterwards."""
    root = provision()
    port, dist, epmd_port = free_port(), free_port(), free_port()
    node = f"meshline-{uuid.uuid4().hex[:10]}@localhost"
    with tempfile.TemporaryDirectory(prefix="meshline-rabbitmq-") as tmp:
        home = Path(tmp)
        (home / "enabled_plugins").write_text("[].\n")
        env = {
            "PATH": f"{root / ERLANG_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(home),  # the Erlang cookie lives here
            "LANG": "C.UTF-8",
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "ERL_EPMD_PORT": str(epmd_port),
            "RABBITMQ_NODENAME": node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(port),
            "RABBITMQ_DIST_PORT": str(dist),
            "RABBITMQ_MNESIA_BASE": str(home / "mnesia"),
            "RABBITMQ_LOG_BASE": str(home / "log"),
            "RABBITMQ_CONF_ENV_FILE": str(home / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(home / "rabbitmq"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(home / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(home / "enabled_plugins"),
            "RABBITMQ_PLUGINS_EXPAND_DIR": str(home / "plugins-expand"),
            "RABBITMQ_PID_FILE": str(home / "rabbitmq.pid"),
        }
        log = open(home / "server.log", "wb")  # noqa: SIM115 - closed below
        epmd = subprocess.Popen(
            dies_with_us([str(root / ERLANG_BIN / "epmd"), "-address", "127.0.0.1", "-port", str(epmd_port)]),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        server = None
        try:
            server = subprocess.Popen(
                dies_with_us([str(root / SERVER)]),
                env=env,
                cwd=home,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            _wait_ready(server, port, home, timeout)
            yield Broker("127.0.0.1", port, node, env, root)
        finally:
            if server is not None:
                _stop(server)
            _stop(epmd)
            log.close()


def _wait_ready(server: subprocess.Popen[bytes], port: int, home: Path, timeout: float) -> None:
    import pika

    params = pika.ConnectionParameters(
        "127.0.0.1", port, credentials=pika.PlainCredentials("guest", "guest"), connection_attempts=1
    )
    deadline = time.monotonic() + timeout
    while True:
        if server.poll() is not None:
            tail = (home / "server.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"rabbitmq-server exited with {server.returncode}:\n{tail}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                pass
            pika.BlockingConnection(params).close()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise RuntimeError("rabbitmq-server did not start in time") from None
            time.sleep(0.3)
