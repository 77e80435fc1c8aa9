"""A private Prometheus server on 127.0.0.1, from Debian's ``prometheus`` package, provisioned on first use.

Tests that check what Meshline exposes on ``/metrics`` want the real scraper and PromQL, not a
regex over the text format. No system install: ``apt-get download prometheus`` fetches the
.deb (bookworm's 2.42, ≈ 19 MB) into ``~/.cache/meshline/prometheus/apt/`` and ``dpkg-deb -x``
unpacks it into ``~/.cache/meshline/prometheus/root/``; both are reused by later runs. When
apt's package lists are empty, ``apt-get update`` runs first (as root).

Only that one .deb is needed: ``usr/bin/prometheus`` is a Go binary that needs nothing but
libc. The package's other Depends (``libjs-*``, fonts) serve the web UI under ``/graph``,
which the HTTP API (``/api/v1/query``, ``/-/ready``) does not use. ``MESHLINE_PROMETHEUS_BINARY``
points at another binary.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.harness import free_port, one_at_a_time, serving

CACHE = Path(os.environ.get("MESHLINE_CACHE") or Path.home() / ".cache" / "meshline") / "prometheus"
BINARY = "usr/bin/prometheus"
_READY = ".meshline-ready"

__all__ = ["prometheus_binary", "run_prometheus"]


def _run(cmd: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False, timeout=600)


def _known() -> bool:
    """Whether apt's lists know the package (they are empty on a freshly built machine)."""
    return _run(["apt-cache", "show", "--no-all-versions", "prometheus"]).returncode == 0


def _download(apt_dir: Path) -> None:
    apt_dir.mkdir(parents=True, exist_ok=True)
    if not _known() and os.geteuid() == 0:
        _run(["apt-get", "update", "-qq"])  # a fresh machine may have no package lists yet
    if not _known():
        raise RuntimeError(
            "apt knows no prometheus package: run 'apt-get update' (as root) "
            "or set MESHLINE_PROMETHEUS_BINARY"
        )
    r = _run(["apt-get", "download", "prometheus"], cwd=apt_dir)
    if r.returncode != 0:
        raise RuntimeError(f"apt-get download prometheus failed: {r.stderr.strip()[-2000:]}")


@one_at_a_time("prometheus")
def prometheus_binary() -> Path:
    """The unpacked ``prometheus`` server binary, downloading and unpacking it the first time.

    pytest-xdist workers may ask at once: :func:`one_at_a_time` lets one of them provision
    while the others wait and then find the ready marker.
    """
    explicit = os.environ.get("MESHLINE_PROMETHEUS_BINARY")
    if explicit:
        return Path(explicit)
    root = CACHE / "root"
    if (root / _READY).exists():
        return root / BINARY
    CACHE.mkdir(parents=True, exist_ok=True)
    apt_dir = CACHE / "apt"
    if not list(apt_dir.glob("prometheus_*.deb")):
        _download(apt_dir)
    staging = Path(tempfile.mkdtemp(prefix="root-", dir=CACHE))  # a killed run leaves no half tree
    deb = sorted(apt_dir.glob("prometheus_*.deb"))[-1]
    r = _run(["dpkg-deb", "-x", str(deb), str(staging)])
    if r.returncode != 0 or not (staging / BINARY).is_file():
        shutil.rmtree(staging, ignore_errors=True)
        raise RuntimeError(f"dpkg-deb -x {deb.name} failed: {r.stderr.strip()}")
    (staging / _READY).write_text("ok\n")
    if root.exists():
        shutil.rmtree(root)
    staging.rename(root)
    return root / BINARY


def _config(scrape_targets: list[str], interval: str) -> str:
    """prometheus.yml scraping ``scrape_targets`` (``host:port``) at ``/metrics``; JSON is YAML."""
    import json

    job = {
        "job_name": "meshline",
        "metrics_path": "/metrics",
        "scrape_interval": interval,
        "scrape_timeout": interval,
        "static_configs": [{"targets": list(scrape_targets)}],
    }
    return json.dumps({"global": {"scrape_interval": interval}, "scrape_configs": [job]}, indent=2)


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as r:
            return bool(r.status == 200)
    except OSError:  # URLError and HTTPError (503 while starting) are OSErrors
        return False


@contextmanager
def run_prometheus(
    scrape_targets: list[str], tmp_path: Path, interval: str = "1s", timeout: float = 60
) -> Iterator[str]:
    """Run Prometheus scraping ``scrape_targets`` every ``interval``; yields its base URL
    (``http://127.0.0.1:PORT``) once ``/-/ready`` answers; stops it when the block ends.

    Config, TSDB and log live under ``tmp_path`` (pytest's ``tmp_path`` fits). The server runs
    in its own process group (terminate, wait, kill: :func:`tests.harness.serving`) and dies
    with the test process even if that is killed. Query with
    ``GET {url}/api/v1/query?query=...``. The first scrape comes some 5-6 s after start, whatever
    the interval: 2.42's discovery manager hands targets to the scraper every 5 s; poll for them.
    """
    binary = prometheus_binary()
    Path(tmp_path).mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="prometheus-", dir=tmp_path))  # several per test may run
    config = work / "prometheus.yml"
    config.write_text(_config(scrape_targets, interval))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [
        str(binary),
        f"--config.file={config}",
        f"--web.listen-address=127.0.0.1:{port}",
        f"--storage.tsdb.path={work / 'data'}",
        f"--web.console.templates={work}",  # not /etc/prometheus: nothing outside tmp_path
        f"--web.console.libraries={work}",
        "--log.level=warn",
    ]
    with serving(
        cmd,
        ready=lambda: _ready(url),
        log=work / "prometheus.log",
        what="prometheus",
        timeout=timeout,
        cwd=work,
    ):
        yield url
