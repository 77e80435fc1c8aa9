"""Trigger filters (SPEC §3) compiled into plain predicates.

A filter dict (one dialect key) compiles into ``predicate(event, stats) -> bool``:

- ``exact`` / ``prefix`` / ``suffix`` compare attribute values as strings
  (integers and booleans in their CloudEvents string form), case-sensitively;
  a missing attribute never matches.
- ``all`` / ``any`` / ``not`` nest, evaluated in order with short-circuit.
- ``cesql``: the expression must evaluate to ``true`` without reporting an
  error; an evaluation error does not match (as in Knative) and is counted in
  ``stats.cesql_errors``.
- ``jq``: the program's first output must be ``true``. A program that raises
  raises :class:`~meshline.errors.FilterError`, so the caller dead-letters the
  event (stage ``filter``): filters never fail open. So does a program that runs
  past ``timeout`` seconds (the trigger's ``filterTimeout``, default 30s): it is
  stopped like a jq step (see :mod:`meshline.transforms.jq`).

Filters are pure functions of the event, tested without Beam.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from meshline.errors import FilterError
from meshline.events import CloudEvent

__all__ = ["FilterStats", "Predicate", "compile_filter", "compile_filters", "exact_index_key"]


class FilterStats:
    """Counters a trigger's filters update (flushed into Beam metrics by the caller)."""

    __slots__ = ("cesql_errors",)

    def __init__(self) -> None:
        self.cesql_errors = 0


Predicate = Callable[[CloudEvent, FilterStats], bool]


def _as_str(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return v if isinstance(v, str) else str(v)


def _attribute_filter(spec: dict[str, Any], dialect: str) -> Predicate:
    items = tuple((k, _as_str(v)) for k, v in spec.items())
    if dialect == "exact":
        if len(items) == 1:
            ((name, want),) = items

            def exact_one(event: CloudEvent, stats: FilterStats) -> bool:
                v = event.attributes.get(name)
                return v is not None and (v == want or (type(v) is not str and _as_str(v) == want))

            return exact_one

        def exact(event: CloudEvent, stats: FilterStats) -> bool:
            attrs = event.attributes
            for name, want in items:
                v = attrs.get(name)
                if v is None or _as_str(v) != want:
                    return False
            return True

        return exact
    matches = str.startswith if dialect == "prefix" else str.endswith

    def affix(event: CloudEvent, stats: FilterStats) -> bool:
        attrs = event.attributes
        for name, want in items:
            v = attrs.get(name)
            if v is None or not matches(_as_str(v), want):
                return False
        return True

    return affix


def _cesql_filter(expression: str) -> Predicate:
    from meshline.transforms.cesql import compile_cesql

    compiled = compile_cesql(expression)

    def cesql(event: CloudEvent, stats: FilterStats) -> bool:
        ok, errors = compiled.matches(event.attributes)
        if errors:
            stats.cesql_errors += 1
            return False
        return ok

    return cesql


def _jq_filter(program: str, timeout: float) -> Predicate:
    from meshline.transforms.jq import JqError, JqTimeout, compile_jq, prewarm_libjq
    from meshline.transforms.limits import seconds

    compiled = compile_jq(program)
    if not compiled.native:
        prewarm_libjq()
    single = compiled.single(timeout)
    too_long = f"jq filter {program!r} timed out after {seconds(timeout)}"
    if single is not None:

        def jq_filter_single(event: CloudEvent, stats: FilterStats) -> bool:
            try:
                outs = single(event.json_form())
            except JqError as e:
                raise FilterError(f"jq filter {program!r} failed: {e}") from None
            except JqTimeout:
                raise FilterError(too_long) from None
            return bool(outs) and outs[0] is True

        return jq_filter_single

    def jq_filter(event: CloudEvent, stats: FilterStats) -> bool:
        try:
            return compiled.is_true(event.json_form(), timeout)
        except JqError as e:
            raise FilterError(f"jq filter {program!r} failed: {e}") from None
        except JqTimeout:
            raise FilterError(too_long) from None

    return jq_filter


def compile_filter(spec: dict[str, Any], timeout: float = 30.0) -> Predicate:
    """One filter dict (exactly one dialect key) → predicate."""
    if not isinstance(spec, dict) or len(spec) != 1:
        raise ValueError(f"a filter must have exactly one dialect key, got {spec!r}")
    ((dialect, arg),) = spec.items()
    if dialect in ("exact", "prefix", "suffix"):
        return _attribute_filter(arg, dialect)
    if dialect == "all":
        return _all(tuple(compile_filter(f, timeout) for f in arg))
    if dialect == "any":
        parts = tuple(compile_filter(f, timeout) for f in arg)

        def any_(event: CloudEvent, stats: FilterStats) -> bool:
            return any(p(event, stats) for p in parts)

        return any_
    if dialect == "not":
        inner = compile_filter(arg, timeout)

        def not_(event: CloudEvent, stats: FilterStats) -> bool:
            return not inner(event, stats)

        return not_
    if dialect == "cesql":
        return _cesql_filter(arg)
    if dialect == "jq":
        return _jq_filter(arg, timeout)
    raise ValueError(f"unknown filter dialect {dialect!r}")


def _all(parts: tuple[Predicate, ...]) -> Predicate:
    if len(parts) == 1:
        return parts[0]

    def all_(event: CloudEvent, stats: FilterStats) -> bool:
        for p in parts:
            if not p(event, stats):
                return False
        return True

    return all_


def compile_filters(specs: Sequence[dict[str, Any]], timeout: float = 30.0) -> Predicate | None:
    """A trigger's filter list (AND, in order) → one predicate; ``None`` matches everything.

    ``timeout``: seconds each jq filter may take on one event.
    """
    if not specs:
        return None
    return _all(tuple(compile_filter(f, timeout) for f in specs))


def exact_index_key(specs: Sequence[dict[str, Any]]) -> tuple[str, str] | None:
    """``(attribute, value)`` when the first filter is an ``exact`` on one attribute.

    The router uses it to dispatch an event to the triggers that can match it in
    one dictionary lookup instead of evaluating every trigger's filter (fan-out).
    """
    if not specs:
        return None
    first = specs[0]
    if isinstance(first, dict) and len(first) == 1 and "exact" in first:
        arg = first["exact"]
        if isinstance(arg, dict) and len(arg) == 1:
            ((k, v),) = arg.items()
            return k, _as_str(v)
    return None
