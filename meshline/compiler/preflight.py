"""What ``meshline run`` checks before a pipeline starts, beyond the file itself.

``meshline validate`` and ``meshline test`` check the file; some problems only exist
where and when a run starts — a ``file`` source whose path matches no file. Each
component may declare such checks (``Component.preflight``); :func:`preflight` runs them
on every source and target of an integration and locates each problem at its config key.
"""

from __future__ import annotations

from typing import Any

from meshline.config import parse_config
from meshline.errors import ConfigError, Problem
from meshline.registry import lookup

__all__ = ["preflight"]

_SECTIONS = (("sources", "source"), ("targets", "target"))


def preflight(integration: Any) -> list[Problem]:
    """Every problem the components of ``integration`` find before a run, located in its file."""
    problems: list[Problem] = []
    for section, kind in _SECTIONS:
        for index, decl in enumerate(getattr(integration, section)):
            component = lookup(kind, decl.type)  # type: ignore[arg-type]
            if component is None or component.preflight is None:
                continue
            try:
                config: Any = parse_config(component.config, dict(decl.config or {}))
            except ConfigError:
                continue  # the build reports it
            for key, message in component.preflight(config):
                path = ("spec", section, index, "config", *key.split("."))
                where = f"spec.{section}[{index}].config.{key}"
                text = integration.redactor.redact(f"{where}: {message}")
                problems.append(Problem(integration.locate(path, key=True), text))
    return problems
