"""moto in server mode (AWS SQS, S3, S3 → SQS notifications) on 127.0.0.1 and a free port.

moto is a pinned dev dependency (``moto[server]`` in requirements-dev.lock), so
there is nothing to download: the server is the ``moto_server`` script next to
the running interpreter (or ``python -m moto.server``). Clients get fake
credentials through :func:`aws_env`, set only in the test process environment.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.harness import dies_with_us, free_port

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account id


def aws_env(endpoint: str) -> dict[str, str]:
    """Fake credentials and the region for a boto3 client of the moto server."""
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        "MESHLINE_TEST_AWS_ENDPOINT": endpoint,
    }


# moto's SQS reads the clock through datetime arithmetic (~6 µs a call) several
# times per stored message on every receive and send, and looks up every queue
# attribute (an O(queue depth) count) for each message it returns: a queue of a
# thousand messages then moves ~12 messages/s. These patches replace only those
# clock reads and that retention lookup with equivalent cheap ones; the server's
# protocol and queue semantics are moto's own.
#
# moto's SQS is also not thread-safe: DeleteMessage rebuilds a queue's message
# list from a snapshot, so a concurrent SendMessage (or another delete) is
# undone — messages vanish or deleted ones come back. Real SQS has no such race,
# so every SQS backend call runs under one lock here; a long poll waits outside
# it (short receives under the lock, until the wait time is over).
_LAUNCHER = """
import functools, sys, threading, time
import moto.sqs.models as m

_LOCK = threading.RLock()

def _locked(fn):
    @functools.wraps(fn)
    def call(*args, **kwargs):
        with _LOCK:
            return fn(*args, **kwargs)
    return call

for _name in ("send_message", "send_message_batch", "delete_message", "delete_message_batch",
              "change_message_visibility", "change_message_visibility_batch", "purge_queue",
              "create_queue", "delete_queue", "get_queue_attributes", "set_queue_attributes"):
    setattr(m.SQSBackend, _name, _locked(getattr(m.SQSBackend, _name)))

_receive = m.SQSBackend.receive_message

def receive_message(self, queue_name, count, wait_seconds_timeout, visibility_timeout,
                    message_attribute_names=None):
    deadline = time.time() + (wait_seconds_timeout or 0)
    while True:
        with _LOCK:
            result = _receive(self, queue_name, count, 0, visibility_timeout, message_attribute_names)
        if result or time.time() >= deadline:
            return result
        time.sleep(0.05)

m.SQSBackend.receive_message = receive_message

def unix_time(dt=None, _orig=m.unix_time):
    return time.time() if dt is None else _orig(dt)

def unix_time_millis(dt=None, _orig=m.unix_time_millis):
    return time.time() * 1000.0 if dt is None else _orig(dt)

def is_message_valid_based_on_retention_period(self, queue_name, message):
    retention = int(self.get_queue(queue_name).message_retention_period)
    return retention + message.sent_timestamp / 1000 > time.time()

m.unix_time = unix_time
m.unix_time_millis = unix_time_millis
m.SQSBackend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period
from moto.server import main
sys.exit(main(sys.argv[1:]))
"""


def _command(port: int) -> list[str]:
    return [sys.executable, "-c", _LAUNCHER, "-H", "127.0.0.1", "-p", str(port)]


@contextmanager
def moto_server(timeout: float = 60) -> Iterator[str]:
    """Start ``moto_server``; yields its endpoint URL ``http://127.0.0.1:PORT``; stops it afterwards."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="meshline-moto-") as tmp:
        log = open(os.path.join(tmp, "moto.log"), "wb")  # noqa: SIM115 - closed below
        env = dict(os.environ)
        env.update(aws_env(url))
        proc = subprocess.Popen(
            dies_with_us(_command(port)),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"moto_server exited with {proc.returncode}: "
                        + Path(tmp, "moto.log").read_text(errors="replace")[-2000:]
                    )
                try:
                    with urllib.request.urlopen(url + "/moto-api/", timeout=1):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError("moto_server did not start in time") from None
                    time.sleep(0.2)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
            log.close()
