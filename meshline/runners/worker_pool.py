"""Beam's Python worker pool for an EXTERNAL environment, listening on one address only.

``python -m meshline.runners.worker_pool --service_port=50000`` is what runs beside a
Flink TaskManager when the job was packaged as a jar (:mod:`meshline.runners.flink_jar`)
with ``--environment_type=EXTERNAL --environment_config=127.0.0.1:50000``: the
TaskManager asks it for an SDK harness per job, and the harness runs Meshline's steps,
so it must run with the Python environment Meshline (and the integration's dependencies)
is installed in.

It replaces Beam's ``python -m apache_beam.runners.worker.worker_pool_main``, which binds
``[::]:PORT`` (every interface, hard-coded in ``BeamFnExternalWorkerPoolServicer.start``):
this one binds ``--bind_host`` (127.0.0.1 unless told otherwise; a pod's sidecar shares
the TaskManager's loopback). The SDK harnesses run as threads of this process, not as
``python`` subprocesses (Beam's choice, which takes the first ``python`` on PATH): killing
the pool kills its harnesses, and a restarted pool starts clean.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence

__all__ = ["main", "start"]


def start(port: int, host: str = "127.0.0.1") -> tuple[str, object]:
    """Start the pool on ``host:port`` (0: any free port); returns its address and gRPC server."""
    from meshline.runners.loopback import _start_worker_pool

    return _start_worker_pool(bind=f"{host}:{port}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m meshline.runners.worker_pool", description=__doc__)
    parser.add_argument("--service_port", type=int, required=True, help="port to listen on")
    parser.add_argument("--bind_host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    args, _ = parser.parse_known_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    address, server = start(args.service_port, args.bind_host)
    logging.getLogger("meshline.worker_pool").info("Beam worker pool listening at %s", address)
    stopped = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopped.set())
    stopped.wait()
    server.stop(1)  # type: ignore[attr-defined]
    return 0


if __name__ == "__main__":
    sys.exit(main())
