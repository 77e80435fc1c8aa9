"""Compiler: the integration model → a Beam pipeline (build), plus test and summary helpers.

The package itself imports nothing heavy: :mod:`meshline.compiler.build` (Apache
Beam) is imported when :func:`build_pipeline` is first asked for (PEP 562), so
that light modules (``plan``, ``router``, ``progress``, ``summary``) serve commands
that run no pipeline.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Built", "build_pipeline", "plan_triggers"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from meshline.compiler import build

        return getattr(build, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
