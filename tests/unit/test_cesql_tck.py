"""The CloudEvents SQL TCK, read from ``shared/conformance/cesql/*.yaml`` at test time.

The shared directory is ``$MESHLINE_SHARED`` when set, else ``../shared`` beside
the repository. If the TCK is not there the suite fails: a conformance claim
that silently ran nothing would be worse than a red build.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshline.transforms.cesql import CesqlParseError, compile_cesql


def _shared_dir() -> Path:
    configured = os.environ.get("MESHLINE_SHARED")
    return Path(configured) if configured else Path(__file__).resolve().parents[2].parent / "shared"


TCK_DIR = _shared_dir() / "conformance" / "cesql"

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
    files = sorted(TCK_DIR.glob("*.yaml")) if TCK_DIR.is_dir() else []
    if not files:
        return [pytest.param(None, id="tck-not-found")]
    cases = []
    for path in files:
        suite = _load(path)
        for test in suite["tests"]:
            cases.append(pytest.param(test, id=f"{path.name}::{test['name']}"))
    return cases


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
def test_tck(test: dict[str, Any] | None) -> None:
    if test is None:
        pytest.fail(
            f"CESQL TCK not found: no *.yaml in {TCK_DIR}. Put the shared/ directory beside the "
            "repository or set MESHLINE_SHARED to it."
        )
    value, errors = _run(str(test["expression"]), _event(test))

    if "error" in test:
        assert errors, f"expected a {test['error']!r} error, got none (value {value!r})"
        assert errors[0].kind == test["error"], f"first error: {errors[0]!r}"
    else:
        assert errors == [], f"unexpected errors: {errors!r}"
    if "result" in test:
        expected = test["result"]
        assert (type(value), value) == (type(expected), expected)
