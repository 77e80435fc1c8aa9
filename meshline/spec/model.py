"""Phase 6: the typed model the compiler consumes, built from a defaulted document.

Frozen dataclasses; configs and filters stay plain dicts (after interpolation),
as the components parse their own configs. ``repr`` of a declaration masks its
component's secret-marked config fields (and every
:class:`~meshline.secrets.Secret` value), so logging a model does not leak
credentials.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from meshline.config import parse_duration
from meshline.errors import Location
from meshline.spec.findings import Path
from meshline.spec.redact import MASK, Redactor, redact_config
from meshline.spec.yamlload import LocationTable

__all__ = [
    "Backoff",
    "ComponentDecl",
    "Delivery",
    "Execution",
    "Integration",
    "Parameter",
    "TestCase",
    "Trigger",
    "build_integration",
]


@dataclass(frozen=True)
class Parameter:
    """A declared parameter (``--param NAME=VALUE``, Flex Template parameter)."""

    name: str
    description: str = ""
    required: bool = False
    default: Any = None
    secret: bool = False

    def __repr__(self) -> str:
        default = MASK if self.secret and self.default is not None else repr(self.default)
        return (
            f"Parameter(name={self.name!r}, description={self.description!r}, required={self.required!r}, "
            f"default={default}, secret={self.secret!r})"
        )


@dataclass(frozen=True)
class ComponentDecl:
    """A source, transformation or target as declared: ``config`` is the interpolated mapping.

    ``parsed`` is the config dataclass the references phase parsed from it (``None``
    when it was not parsed, or did not parse: a placeholder ``meshline validate``
    left); :func:`meshline.spec.resolve.resolve` hands it to the compiler.
    """

    name: str
    type: str
    config: dict[str, Any] = field(default_factory=dict)
    line: int = 0
    kind: str = ""  # source, target or transformation ("" when unknown)
    parsed: Any = field(default=None, compare=False, repr=False)

    def config_class(self) -> Any:
        """The component's config dataclass, when its kind and type are known."""
        from meshline import registry

        if self.kind not in ("source", "target", "transformation"):
            return None
        try:
            component = registry.lookup(self.kind, self.type)  # type: ignore[arg-type]
        except Exception:
            return None
        return component.config if component is not None else None

    def __repr__(self) -> str:
        config = redact_config(self.config, self.config_class())
        return (
            f"ComponentDecl(name={self.name!r}, type={self.type!r}, config={config!r}, "
            f"line={self.line!r}, kind={self.kind!r})"
        )


@dataclass(frozen=True)
class Backoff:
    """Delay between delivery retries; ``delay`` and ``max`` in seconds."""

    policy: str = "exponential"
    delay: float = 0.2
    max: float = 30.0


@dataclass(frozen=True)
class Delivery:
    """Retries, backoff and the dead-letter target (a target name) of a trigger."""

    retries: int = 3
    backoff: Backoff = field(default_factory=Backoff)
    dead_letter: str | None = None


@dataclass(frozen=True)
class Trigger:
    """A route: events of ``sources`` that pass all ``filters`` go through ``steps`` to ``target``."""

    name: str
    sources: tuple[str, ...]
    filters: tuple[dict[str, Any], ...]
    steps: tuple[str, ...]
    target: str
    delivery: Delivery = field(default_factory=Delivery)
    # seconds one jq filter may take on one event (filterTimeout)
    filter_timeout: float = 30.0


@dataclass(frozen=True)
class TestCase:
    """A test inside the file: events per source name in, expected events per target name out."""

    __test__ = False  # not a pytest test class

    name: str
    inputs: dict[str, list[dict[str, Any]]]
    expect: dict[str, list[dict[str, Any]]]
    # where it is written: the case's line, and per expected target the line of its list
    # and of each expected event (0 when unknown)
    line: int = field(default=0, compare=False)
    expect_lines: dict[str, tuple[int, tuple[int, ...]]] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Execution:
    """``spec.execution``: how the runner paces the run; ``None`` keeps the runner's default.

    Durations in seconds. The defaults per runner are in :mod:`meshline.runners.pacing`.
    """

    bundle_size: int | None = None
    bundle_time: float | None = None
    checkpoint_interval: float | None = None
    fill_wait: float | None = None
    fill_budget: float | None = None


@dataclass(frozen=True)
class Integration:
    """One integration document, validated, with defaults applied."""

    name: str
    description: str
    file: str
    parameters: tuple[Parameter, ...]
    sources: tuple[ComponentDecl, ...]
    transformations: tuple[ComponentDecl, ...]
    targets: tuple[ComponentDecl, ...]
    triggers: tuple[Trigger, ...]
    dead_letter: str | None
    tests: tuple[TestCase, ...]
    redactor: Redactor = field(default_factory=Redactor, compare=False)
    # the secret references its configs use (params.X, env.X, literal.WHERE) -> how each was given:
    # "value", "secretmanager", "env" or "literal" (see meshline.spec.interpolate)
    secret_refs: dict[str, str] = field(default_factory=dict, compare=False)
    # the directory of the file it was read from (None: text); python steps import from it
    directory: str | None = field(default=None, compare=False)
    # where each key is in the file (None: built without one), for problems found later
    table: LocationTable | None = field(default=None, compare=False, repr=False)
    execution: Execution = field(default_factory=Execution)

    def locate(self, path: tuple[str | int, ...], key: bool = False) -> Location:
        """``FILE:LINE:COL`` of the value (or the key) at ``path`` in the document."""
        if self.table is None:
            return Location(self.file)
        return self.table.location(path, key=key)

    def source(self, name: str) -> ComponentDecl:
        return _find(self.sources, name, "source")

    def target(self, name: str) -> ComponentDecl:
        return _find(self.targets, name, "target")

    def transformation(self, name: str) -> ComponentDecl:
        return _find(self.transformations, name, "transformation")

    def trigger(self, name: str) -> Trigger:
        for trigger in self.triggers:
            if trigger.name == name:
                return trigger
        raise KeyError(f"no trigger named {name!r}")


def _find(items: tuple[ComponentDecl, ...], name: str, what: str) -> ComponentDecl:
    for item in items:
        if item.name == name:
            return item
    raise KeyError(f"no {what} named {name!r}")


_KINDS = {"sources": "source", "targets": "target", "transformations": "transformation"}


def _components(
    spec: dict[str, Any], section: str, table: LocationTable | None, configs: Mapping[Path, Any]
) -> tuple[ComponentDecl, ...]:
    return tuple(
        ComponentDecl(
            name=item["name"],
            type=item["type"],
            config=dict(item.get("config") or {}),
            line=table.line(("spec", section, i)) if table is not None else 0,
            kind=_KINDS[section],
            parsed=configs.get(("spec", section, i)),
        )
        for i, item in enumerate(spec[section])
    )


def _test_case(raw: dict[str, Any], index: int, table: LocationTable | None) -> TestCase:
    expect = dict(raw["expect"])
    lines: dict[str, tuple[int, tuple[int, ...]]] = {}
    if table is not None:
        at = ("spec", "tests", index, "expect")
        for target, events in expect.items():
            count = len(events) if isinstance(events, list) else 0
            lines[target] = (
                table.location((*at, target), key=True).line,
                tuple(table.line((*at, target, j)) for j in range(count)),
            )
    return TestCase(
        name=raw["name"],
        inputs=dict(raw["inputs"]),
        expect=expect,
        line=table.line(("spec", "tests", index)) if table is not None else 0,
        expect_lines=lines,
    )


def _delivery(raw: dict[str, Any]) -> Delivery:
    backoff = raw["backoff"]
    return Delivery(
        retries=int(raw["retries"]),
        backoff=Backoff(
            policy=backoff["policy"],
            delay=float(parse_duration(backoff["delay"])),
            max=float(parse_duration(backoff["max"])),
        ),
        dead_letter=raw.get("deadLetter"),
    )


def build_integration(
    data: dict[str, Any],
    *,
    file: str = "<string>",
    table: LocationTable | None = None,
    redactor: Redactor | None = None,
    secret_refs: dict[str, str] | None = None,
    directory: str | None = None,
    configs: Mapping[Path, Any] | None = None,
) -> Integration:
    """The model of one document that passed every check and had its defaults applied.

    ``configs``: the parsed config of each component by its path (``("spec", "sources", 0)``),
    as :func:`meshline.spec.validate.check_references` parsed them.
    """
    spec = data["spec"]
    configs = configs or {}
    return Integration(
        name=data["metadata"]["name"],
        description=data["metadata"].get("description", ""),
        file=file,
        parameters=tuple(
            Parameter(
                name=p["name"],
                description=p.get("description", ""),
                required=bool(p.get("required", False)),
                default=p.get("default"),
                secret=bool(p.get("secret", False)),
            )
            for p in spec["parameters"]
        ),
        sources=_components(spec, "sources", table, configs),
        transformations=_components(spec, "transformations", table, configs),
        targets=_components(spec, "targets", table, configs),
        triggers=tuple(
            Trigger(
                name=t["name"],
                sources=tuple(t["sources"]),
                filters=tuple(t["filters"]),
                steps=tuple(t["steps"]),
                target=t["target"],
                delivery=_delivery(t["delivery"]),
                filter_timeout=float(parse_duration(t.get("filterTimeout", 30.0))),
            )
            for t in spec["triggers"]
        ),
        dead_letter=spec.get("deadLetter"),
        tests=tuple(_test_case(c, i, table) for i, c in enumerate(spec["tests"])),
        redactor=redactor or Redactor(),
        secret_refs=dict(secret_refs or {}),
        directory=directory,
        table=table,
        execution=_execution(spec.get("execution") or {}),
    )


def _execution(given: Mapping[str, Any]) -> Execution:
    def seconds(key: str) -> float | None:
        return None if given.get(key) is None else float(parse_duration(given[key]))

    size = given.get("bundleSize")
    return Execution(
        bundle_size=None if size is None else int(size),
        bundle_time=seconds("bundleTime"),
        checkpoint_interval=seconds("checkpointInterval"),
        fill_wait=seconds("fillWait"),
        fill_budget=seconds("fillBudget"),
    )
