"""Conformance suites fetched from a package registry into the cache at test time.

The CloudEvents SQL TCK (the ``*.yaml`` cases that the CESQL specification's test kit
defines) is published inside the Go module ``github.com/cloudevents/sdk-go/sql/v2``
under ``test/tck/``. The Go module proxy serves that module as a zip, so the suite is
fetched from there — the same registry ``make prism`` builds Prism from — checked
against a pinned SHA-256, and unpacked into ``$MESHLINE_CACHE/conformance/`` (default
``~/.cache/meshline``) once. Nothing is read from outside the repository and its cache.

The proxy is the first ``http(s)`` entry of ``$GOPROXY`` (as the ``go`` command reads
it), else ``https://proxy.golang.org``.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tempfile
import urllib.request
import zipfile
from pathlib import Path

__all__ = ["CESQL_TCK_MODULE", "CESQL_TCK_VERSION", "cesql_tck_dir"]

CESQL_TCK_MODULE = "github.com/cloudevents/sdk-go/sql/v2"
CESQL_TCK_VERSION = "v2.16.2"
# SHA-256 of the module zip the proxy serves (the go command checks the same zip against
# sum.golang.org; this pin makes a download without the go command just as safe).
CESQL_TCK_SHA256 = "58ce9389930480a8cb27ece2de0103da1b21971b86c8d990b7527e9157c2c4fa"
_TCK_PREFIX = f"{CESQL_TCK_MODULE}@{CESQL_TCK_VERSION}/test/tck/"


def _cache_root() -> Path:
    base = os.environ.get("MESHLINE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "meshline")
    return Path(base) / "conformance"


def _proxy() -> str:
    for entry in os.environ.get("GOPROXY", "").replace("|", ",").split(","):
        entry = entry.strip()
        if entry.startswith(("http://", "https://")):
            return entry.rstrip("/")
    return "https://proxy.golang.org"


def _module_zip() -> bytes:
    url = f"{_proxy()}/{CESQL_TCK_MODULE}/@v/{CESQL_TCK_VERSION}.zip"
    with urllib.request.urlopen(url, timeout=60) as response:
        body: bytes = response.read()
    digest = hashlib.sha256(body).hexdigest()
    if digest != CESQL_TCK_SHA256:
        raise RuntimeError(f"{url}: SHA-256 {digest}, expected {CESQL_TCK_SHA256}")
    return body


def cesql_tck_dir() -> Path:
    """The directory holding the CESQL TCK's ``*.yaml`` files; fetched on first use."""
    target = _cache_root() / f"cesql-tck-{CESQL_TCK_VERSION}"
    if any(target.glob("*.yaml")):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(io.BytesIO(_module_zip())) as archive:
        members = [n for n in archive.namelist() if n.startswith(_TCK_PREFIX) and n.endswith(".yaml")]
        if not members:
            raise RuntimeError(f"{CESQL_TCK_MODULE}@{CESQL_TCK_VERSION} holds no {_TCK_PREFIX}*.yaml")
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".tck-"))
        for name in members:
            (staging / name.rsplit("/", 1)[1]).write_bytes(archive.read(name))
    try:
        os.rename(staging, target)
    except OSError:  # another process got there first
        shutil.rmtree(staging, ignore_errors=True)
        if not any(target.glob("*.yaml")):
            raise
    return target
