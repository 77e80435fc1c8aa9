"""Azurite (the Azure Storage emulator, npm) serving the Blob API on 127.0.0.1.

Installed on first use with ``npm install azurite@VERSION`` into
``$MESHLINE_CACHE/azurite/VERSION/`` (npm cache in ``$MESHLINE_CACHE/npm``) and
reused. 3.35.0 is the last release that runs on Node 20. ``MESHLINE_AZURITE``
names an existing ``azurite-blob`` instead. Azurite has no Data Lake (DFS)
endpoint; the ``azure.datalake`` target uses the Blob API, which it serves.

The account below is Azurite's documented development account (public).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.harness import dies_with_us, free_port, one_at_a_time

VERSION = "3.35.0"
ACCOUNT = "devstoreaccount1"
# Azurite's well-known development key, published in its README.
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def _cache() -> Path:
    base = os.environ.get("MESHLINE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "meshline")
    return Path(base)


@one_at_a_time("azurite")
def azurite_blob_binary() -> str:
    explicit = os.environ.get("MESHLINE_AZURITE")
    if explicit:
        return explicit
    home = _cache() / "azurite" / VERSION
    binary = home / "node_modules" / ".bin" / "azurite-blob"
    if os.access(binary, os.X_OK):
        return str(binary)
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(f"azurite is not cached in {home} and npm is not installed to fetch it")
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.access(binary, os.X_OK):
            return str(binary)
        r = subprocess.run(
            [
                npm,
                "install",
                "--prefix",
                str(home),
                "--cache",
                str(_cache() / "npm"),
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
                f"azurite@{VERSION}",
            ],
            capture_output=True,
            text=True,
            timeout=1200,
        )
        if r.returncode != 0 or not os.access(binary, os.X_OK):
            raise RuntimeError(f"npm install azurite@{VERSION} failed:\n{r.stderr[-2000:]}")
    return str(binary)


def connection_string(blob_url: str) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};"
        f"AccountKey={ACCOUNT_KEY};BlobEndpoint={blob_url};"
    )


@contextmanager
def azurite(timeout: float = 60) -> Iterator[str]:
    """Start azurite-blob; yields the Blob endpoint ``http://127.0.0.1:PORT/devstoreaccount1``."""
    binary = azurite_blob_binary()
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="meshline-azurite-") as data:
        log_path = Path(data) / "azurite.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                dies_with_us(
                    [
                        binary,
                        "--blobHost",
                        "127.0.0.1",
                        "--blobPort",
                        str(port),
                        "--skipApiVersionCheck",
                        "--disableTelemetry",
                        "--location",
                        os.path.join(data, "store"),
                        "--silent",
                    ]
                ),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                deadline = time.monotonic() + timeout
                while True:
                    if proc.poll() is not None:
                        raise RuntimeError(
                            f"azurite exited with {proc.returncode}:\n{log_path.read_text()[-2000:]}"
                        )
                    try:
                        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                            break
                    except OSError:
                        if time.monotonic() > deadline:
                            raise RuntimeError("azurite did not start in time") from None
                        time.sleep(0.2)
                yield f"http://127.0.0.1:{port}/{ACCOUNT}"
            finally:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
