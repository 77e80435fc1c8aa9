"""Meshline: integration as code for event-driven systems, compiled to Apache Beam.

The public API is small; the command line (``meshline``) is the main interface.
"""

import logging as _logging


def _drop_beam_import_noise(record: _logging.LogRecord) -> bool:
    # Importing apache_beam logs this on the root logger when the GCP extras are absent.
    return "apitools not found" not in record.getMessage()


_logging.getLogger().addFilter(_drop_beam_import_noise)

from meshline.errors import MeshlineError, SpecError  # noqa: E402
from meshline.events import CloudEvent, CloudEventCoder  # noqa: E402

__all__ = ["CloudEvent", "CloudEventCoder", "MeshlineError", "SpecError", "__version__"]

__version__ = "0.1.0"
