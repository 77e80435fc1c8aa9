"""Flex Template launcher for the Meshline integration {{name}} (written by `meshline template`).

Dataflow's Python launcher runs this file with the template's parameters as
``--NAME=VALUE`` and Beam pipeline options; it builds the pipeline from the
integration.yaml next to it and submits it. Run it locally with ``--runner=direct``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from meshline.launch import launch

INTEGRATION = "{{name}}"

if __name__ == "__main__":
    sys.exit(launch(sys.argv[1:], Path(__file__).resolve().with_name("integration.yaml"), name=INTEGRATION))
