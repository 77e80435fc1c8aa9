"""fakesnow in server mode on 127.0.0.1: the Snowflake connector's own protocol, backed by DuckDB.

fakesnow (a pinned dev dependency) speaks the HTTP protocol of
``snowflake-connector-python`` < 5: connect with ``host``/``port``/``protocol="http"``
(the ``snowflake`` target's ``endpoint_url: http://127.0.0.1:PORT``). PUT,
COPY INTO from a stage, MERGE, VARIANT and temporary tables/stages work;
``write_pandas`` does not. Databases are in memory and vanish with the process.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.harness import dies_with_us, free_port


@contextmanager
def fakesnow_server(timeout: float = 60) -> Iterator[str]:
    """Start fakesnow; yields ``http://127.0.0.1:PORT``; stops it afterwards."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="meshline-fakesnow-") as tmp:
        log_path = Path(tmp) / "fakesnow.log"
        log = open(log_path, "wb")  # noqa: SIM115 - closed below
        proc = subprocess.Popen(
            dies_with_us([sys.executable, "-m", "fakesnow", "-s", "--host", "127.0.0.1", "-p", str(port)]),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=tmp,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"fakesnow exited with {proc.returncode}: {log_path.read_text()[-2000:]}"
                    )
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError("fakesnow did not start in time") from None
                    time.sleep(0.2)
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()


def connect(url: str, database: str = "MESHLINE", schema: str = "PUBLIC") -> object:
    """A snowflake.connector connection to the fakesnow at ``url`` (any user/password is accepted)."""
    import snowflake.connector

    host, _, port = url.removeprefix("http://").partition(":")
    return snowflake.connector.connect(
        user="meshline",
        password="test-password",  # fakesnow accepts any
        account="fakesnow",
        host=host,
        port=int(port),
        protocol="http",
        database=database,
        schema=schema,
    )
