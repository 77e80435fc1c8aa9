"""Meshline: integration as code for event-driven systems, compiled to Apache Beam.

The public API is small; the command line (``meshline``) is the main interface.
Importing ``meshline`` does not import Apache Beam (about 2 CPU-s): commands that
run no pipeline answer at once. ``CloudEventCoder`` (a Beam coder) is imported on
first use (PEP 562).
"""

import logging as _logging
import os as _os
from typing import Any as _Any

# Beam imports numpy, whose OpenBLAS starts a thread per core that spins for a while:
# about 0.2-0.4 CPU-s of every run's start-up here, for no BLAS call. A Beam worker is
# parallel by processes, so one BLAS thread is the default; an explicit setting wins.
_os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def _drop_beam_import_noise(record: _logging.LogRecord) -> bool:
    # Importing apache_beam logs this on the root logger when the GCP extras are absent.
    return "apitools not found" not in record.getMessage()


_logging.getLogger().addFilter(_drop_beam_import_noise)

from meshline.errors import MeshlineError, SpecError  # noqa: E402
from meshline.events import CloudEvent  # noqa: E402

__all__ = ["CloudEvent", "CloudEventCoder", "MeshlineError", "SpecError", "__version__"]

__version__ = "0.1.0"


def __getattr__(name: str) -> _Any:
    if name == "CloudEventCoder":
        from meshline.coder import CloudEventCoder

        return CloudEventCoder
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
