"""Late binding by name: a connector's declaration names the function that implements it.

A connector's declaration module (``X_config``: its config dataclass and its
:class:`~meshline.registry.Component`) is imported by every command and imports
neither Apache Beam nor a client library; its Beam module (``X``) imports the
declaration for the config class. The declaration must not import the Beam module
back, not even inside a function: that is an import cycle (a test walks the imports
of ``meshline`` and fails on one). It names it instead, ``module:attr``, the way
:mod:`meshline.registry` names declarations, and the name is imported on the first
call (when a pipeline is built).
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["Late"]


class Late:
    """A function named ``"package.module:attr"``, imported when it is first called."""

    __slots__ = ("ref",)

    def __init__(self, ref: str) -> None:
        if ref.count(":") != 1:
            raise ValueError(f"expected 'module:attr', got {ref!r}")
        self.ref = ref

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        module, _, attr = self.ref.partition(":")
        return getattr(importlib.import_module(module), attr)(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Late({self.ref!r})"
