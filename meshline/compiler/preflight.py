"""What ``meshline run`` checks before a pipeline starts, beyond the file itself.

``meshline validate`` and ``meshline test`` check the file; some problems only exist
where and when a run starts — a ``file`` source whose path matches no file. Each
component may declare such checks (``Component.preflight``); :func:`preflight` runs them
on every source and target of an integration and locates each problem at its config key.
"""

from __future__ import annotations

from meshline.errors import Problem
from meshline.spec.model import Integration
from meshline.spec.resolve import ResolvedIntegration, resolve

__all__ = ["preflight"]


def preflight(integration: ResolvedIntegration | Integration) -> list[Problem]:
    """Every problem the components of ``integration`` find before a run, located in its file.

    Each check gets the component's typed config (:mod:`meshline.spec.resolve`); a config
    that does not parse is left to the build, which reports it.
    """
    resolved = resolve(integration)
    model = resolved.integration
    problems: list[Problem] = []
    for section, components in (("sources", resolved.sources), ("targets", resolved.targets)):
        for index, rc in enumerate(components):
            if rc.component.preflight is None or rc.config is None:
                continue
            for key, message in rc.component.preflight(rc.config):
                path: tuple[str | int, ...] = ("spec", section, index, "config", *key.split("."))
                where = f"spec.{section}[{index}].config.{key}"
                text = model.redactor.redact(f"{where}: {message}")
                problems.append(Problem(model.locate(path, key=True), text))
    return problems
