"""Runner servers (the Flink job server JVM, the Prism binary) die with Meshline.

Beam starts them as child processes and stops them at exit; a Meshline killed with
SIGKILL never reaches that, and the servers lived on (holding ports and gigabytes).
:func:`guarded` wraps a server's command in a tiny Python ``exec`` shim that first asks
Linux to kill it when its parent dies (``prctl(PR_SET_PDEATHSIG, SIGKILL)``; the setting
survives ``exec``), then becomes the server. Elsewhere the command is left as it is.

Linux sends the signal when the *thread* that started the child ends; Beam starts these
servers from the thread that runs the pipeline, which lives as long as the run.
"""

from __future__ import annotations

import os
import sys

__all__ = ["guarded"]

_SHIM = (
    "import ctypes,os,signal,sys\n"
    "if ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL) != 0: sys.exit('prctl failed')\n"
    "if os.getppid() != int(sys.argv[1]): sys.exit(1)  # the parent is already gone\n"
    "os.execvp(sys.argv[2], sys.argv[2:])\n"
)


def guarded(cmd: list[str]) -> list[str]:
    """``cmd`` so that its process is killed when this process dies, however it dies."""
    if not sys.platform.startswith("linux"):
        return cmd
    return [sys.executable, "-S", "-c", _SHIM, str(os.getpid()), *map(str, cmd)]
