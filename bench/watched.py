"""A variant of a ``meshline run`` command with its run watched: ``--ui`` and ``--metrics-port``
on, and the live page's requests made every second as an open page makes them.

    python -m bench.watched meshline run FILE … → runs it with ``--ui=PORT`` (page and
    ``/metrics`` on one port), polls ``/api/stats``, ``/api/dead-letters`` and ``/metrics``
    once a second until it ends, and exits with its status.

The bench measures this process's rusage, which includes the run it reaped: the polling's own
CPU (a few ms a second) counts against the watched variant, as a browser's requests would.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import urllib.request


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _poll(port: int, done: threading.Event) -> None:
    base = f"http://127.0.0.1:{port}"
    after = 0
    while not done.wait(1.0):
        for path in ("/api/stats", f"/api/dead-letters?after={after}", "/metrics"):
            try:
                with urllib.request.urlopen(base + path, timeout=5) as r:
                    r.read()
            except OSError:
                break  # not listening yet, or the run ended


def main(argv: list[str]) -> int:
    port = _free_port()
    proc = subprocess.Popen([*argv, f"--ui={port}"])
    done = threading.Event()
    poller = threading.Thread(target=_poll, args=(port, done), daemon=True)
    poller.start()
    status = proc.wait()
    done.set()
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
