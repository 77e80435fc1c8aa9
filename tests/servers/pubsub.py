"""The Google Pub/Sub emulator (Debian's google-cloud-cli-pubsub-emulator), on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.harness import dies_with_us, free_port

CANDIDATES = (
    "/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator",
    "/usr/share/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator",
)


def emulator_binary() -> str:
    explicit = os.environ.get("MESHLINE_PUBSUB_EMULATOR")
    if explicit:
        return explicit
    for c in CANDIDATES:
        if os.access(c, os.X_OK):
            return c
    gcloud = shutil.which("gcloud")
    if gcloud:
        root = Path(os.path.realpath(gcloud)).parent.parent
        c = root / "platform" / "pubsub-emulator" / "bin" / "cloud-pubsub-emulator"
        if os.access(c, os.X_OK):
            return str(c)
    raise RuntimeError(
        "the Pub/Sub emulator is not installed (Debian package google-cloud-cli-pubsub-emulator); "
        "set MESHLINE_PUBSUB_EMULATOR to its cloud-pubsub-emulator"
    )


@contextmanager
def pubsub_emulator(timeout: float = 60) -> Iterator[str]:
    """Start the emulator; yields ``127.0.0.1:PORT``; stops it afterwards."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="meshline-pubsub-") as data:
        log = open(os.path.join(data, "emulator.log"), "wb")  # noqa: SIM115 - closed below
        proc = subprocess.Popen(
            dies_with_us([emulator_binary(), "--host=127.0.0.1", f"--port={port}"]),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"the Pub/Sub emulator exited with {proc.returncode}")
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError("the Pub/Sub emulator did not start in time") from None
                    time.sleep(0.2)
            yield f"127.0.0.1:{port}"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()
