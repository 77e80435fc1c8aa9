"""The CloudEvents SQL TCK, fetched from the Go module proxy into the cache (tests/conformance.py).

If the TCK cannot be fetched the suite fails: a conformance claim that silently ran
nothing would be worse than a red build.

The published TCK (sdk-go ``sql/v2`` v2.16.2, the newest version the proxy serves)
predates one correction the CESQL specification's own TCK has since made; that case
is listed in :data:`CORRECTIONS` with the specification's rule, and is checked against
the corrected expectation instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from meshline.transforms.cesql import CesqlParseError, compile_cesql
from tests.conformance import cesql_tck_dir

# (file, expression) -> the expectation the CESQL specification gives where sdk-go's copy of
# the TCK is older. NOT takes a Boolean; an Integer operand is cast implicitly (CESQL v1
# section 3.7, unary rule 1.1), and Integer -> Boolean is not a valid cast, so the
# evaluation reports a CastError and the cast yields false: NOT false is true. (sdk-go
# v2.16.2 expects false without an error; the specification repository's TCK was corrected.)
CORRECTIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("not_operator.yaml", "NOT 10"): {"result": True, "error": "cast"},
}

# Any valid event will do when a case gives none (TCK README); eventOverrides are applied on top.
DEFAULT_EVENT = {"specversion": "1.0", "id": "tck-1", "source": "/meshline/tck", "type": "dev.meshline.tck"}


class _TckLoader(yaml.SafeLoader):
    """SafeLoader that keeps timestamps as strings: the TCK's events are JSON, where ``time`` is a string."""


_TckLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _load(path: Path) -> dict[str, Any]:
    loader = _TckLoader(path.read_text(encoding="utf-8"))
    try:
        suite: dict[str, Any] = loader.get_single_data()
        return suite
    finally:
        loader.dispose()


def _cases() -> list[Any]:
    try:
        files = sorted(cesql_tck_dir().glob("*.yaml"))
    except Exception as e:  # reported by the test below, not as a collection error
        return [pytest.param({"missing": f"{type(e).__name__}: {e}"}, id="tck-not-found")]
    if not files:
        return [pytest.param({"missing": "the TCK holds no *.yaml"}, id="tck-not-found")]
    cases = []
    for path in files:
        suite = _load(path)
        for test in suite["tests"]:
            correction = CORRECTIONS.get((path.name, str(test["expression"])))
            if correction is not None:
                test = {k: v for k, v in test.items() if k not in ("result", "error")} | correction
            cases.append(pytest.param(test, id=f"{path.name}::{test['name']}"))
    return cases


def test_tck_is_complete() -> None:
    """Every TCK file is there and every correction applies to a case that exists."""
    names = {p.name for p in cesql_tck_dir().glob("*.yaml")}
    assert len(names) >= 17, sorted(names)
    for file, expression in CORRECTIONS:
        suite = _load(cesql_tck_dir() / file)
        assert any(str(t["expression"]) == expression for t in suite["tests"]), (file, expression)


def _event(test: dict[str, Any]) -> dict[str, Any]:
    if test.get("event") is not None:
        return dict(test["event"])
    return {**DEFAULT_EVENT, **(test.get("eventOverrides") or {})}


def _run(expression: str, event: dict[str, Any]) -> tuple[Any, list[Any]]:
    """Value and errors; a parse error counts as the value false with that one error."""
    try:
        compiled = compile_cesql(expression)
    except CesqlParseError as error:
        return False, [error]
    return compiled.evaluate(event)


@pytest.mark.parametrize("test", _cases())
def test_tck(test: dict[str, Any]) -> None:
    if "missing" in test:
        pytest.fail(f"CESQL TCK could not be fetched: {test['missing']}")
    value, errors = _run(str(test["expression"]), _event(test))

    if "error" in test:
        assert errors, f"expected a {test['error']!r} error, got none (value {value!r})"
        assert errors[0].kind == test["error"], f"first error: {errors[0]!r}"
    else:
        assert errors == [], f"unexpected errors: {errors!r}"
    if "result" in test:
        expected = test["result"]
        assert (type(value), value) == (type(expected), expected)
