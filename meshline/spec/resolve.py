"""Phase 8: resolve — each component of the model with its registry entry and its typed config.

The references phase (:mod:`meshline.spec.validate`) parses every component's
config into its dataclass to report its problems; the model keeps that dataclass
on the declaration (``ComponentDecl.parsed``). :func:`resolve` pairs each
declaration with its :class:`~meshline.registry.Component` and that config, so
the compiler never parses a config again: ``build_pipeline`` takes a
:class:`ResolvedIntegration`, and the router's plans carry the dataclasses
(picklable: a :class:`~meshline.secrets.Secret` inside pickles as its template
only) to the workers. A config is parsed here only when the model was built
without the loader (tests building :class:`~meshline.spec.model.Integration`
by hand) or when validation could not parse it (a placeholder ``meshline
validate`` left): then its :class:`~meshline.errors.ConfigError` is kept and
raised when the component is built, so ``meshline test`` still runs files whose
overridden connectors have placeholders.

This is also the one place that answers whether a run is a streaming one
(:attr:`ResolvedIntegration.unbounded`) and whether its sources may redeliver
(:attr:`ResolvedIntegration.redelivering`). Importing it imports no Beam.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from meshline.config import parse_config
from meshline.errors import ConfigError
from meshline.registry import Component, Kind, lookup
from meshline.spec.model import ComponentDecl, Integration

__all__ = ["ResolvedComponent", "ResolvedIntegration", "resolve"]


@dataclass(frozen=True)
class ResolvedComponent:
    """A declaration, its registry entry and its parsed config (or why it does not parse)."""

    decl: ComponentDecl
    component: Component
    config: Any = None  # the config dataclass; None when ``error`` says why not
    error: ConfigError | None = field(default=None, compare=False)

    @property
    def name(self) -> str:
        return self.decl.name

    @property
    def type(self) -> str:
        return self.decl.type

    def typed_config(self) -> Any:
        """The config dataclass; raises the :class:`ConfigError` of a config that does not parse."""
        if self.error is not None:
            raise self.error
        return self.config


@dataclass(frozen=True)
class ResolvedIntegration:
    """An :class:`~meshline.spec.model.Integration` with every component resolved."""

    integration: Integration
    sources: tuple[ResolvedComponent, ...]
    transformations: tuple[ResolvedComponent, ...]
    targets: tuple[ResolvedComponent, ...]
    unbounded: bool  # some source never ends by itself: the run is a streaming one
    # some unbounded source may redeliver what was not committed after a crash (queues, Kafka …)
    redelivering: bool

    @property
    def name(self) -> str:
        return self.integration.name

    def transformation(self, name: str) -> ResolvedComponent:
        return _find(self.transformations, name)

    def target(self, name: str) -> ResolvedComponent:
        return _find(self.targets, name)

    def source(self, name: str) -> ResolvedComponent:
        return _find(self.sources, name)


def _find(items: tuple[ResolvedComponent, ...], name: str) -> ResolvedComponent:
    for item in items:
        if item.name == name:
            return item
    raise KeyError(f"no component named {name!r}")


def _resolve(kind: Kind, decl: ComponentDecl) -> ResolvedComponent:
    component = lookup(kind, decl.type)
    if component is None:
        raise ConfigError(f"{kind} {decl.name}: unknown type {decl.type!r}")
    if decl.parsed is not None and isinstance(decl.parsed, component.config):
        return ResolvedComponent(decl, component, decl.parsed)
    try:
        return ResolvedComponent(decl, component, parse_config(component.config, dict(decl.config or {})))
    except ConfigError as e:
        return ResolvedComponent(decl, component, None, e)


def resolve(integration: Integration | ResolvedIntegration) -> ResolvedIntegration:
    """Every component of ``integration`` looked up and its config typed (parsed only if not yet).

    Raises :class:`ConfigError` for a type the registry does not know (the loader
    reports those first); a config that does not parse is raised when it is built.
    """
    if isinstance(integration, ResolvedIntegration):
        return integration
    sources = tuple(_resolve("source", d) for d in integration.sources)
    unbounded = [s for s in sources if s.component.is_unbounded(s.decl.config)]
    return ResolvedIntegration(
        integration=integration,
        sources=sources,
        transformations=tuple(_resolve("transformation", d) for d in integration.transformations),
        targets=tuple(_resolve("target", d) for d in integration.targets),
        unbounded=bool(unbounded),
        redelivering=any(s.component.redelivers for s in unbounded),
    )
