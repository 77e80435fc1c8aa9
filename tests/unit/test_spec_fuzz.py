"""Property tests: whatever a file holds, loading raises SpecError or succeeds — nothing else, no hang."""

from __future__ import annotations

import copy
import os
import sys
import tempfile
import types
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshline import registry
from meshline.config import Duration, doc
from meshline.errors import Problem, SpecError
from meshline.spec import LoadResult, load_file, load_text

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@dataclass(frozen=True, kw_only=True)
class _Config:
    path: str = doc("Path.", "")
    hosts: list[str] = doc("Hosts.", [])
    window: Duration | None = doc("Window.", None)
    password: str | None = doc("Password.", None)


@pytest.fixture(scope="module", autouse=True)
def fake_world():
    with pytest.MonkeyPatch.context() as mp:
        components = {
            (kind, type_id): registry.Component(
                id=type_id,
                kind=kind,
                config=_Config,
                build=print,
                description=type_id,  # type: ignore[arg-type]
            )
            for kind in ("source", "target", "transformation")
            for type_id in ("file", "jq", "es")
        }
        mp.setattr(registry, "lookup", lambda kind, type_id: components.get((kind, type_id)))
        mp.setattr(registry, "ids", lambda kind: ["es", "file", "jq"])
        mp.setattr(registry, "planned_ids", lambda kind: ["kafka"])
        for name, function, error in (
            ("jq", "compile_jq", "JqCompileError"),
            ("cesql", "compile_cesql", "CesqlParseError"),
        ):
            module = types.ModuleType(f"meshline.transforms.{name}")
            exc = type(error, (Exception,), {})

            def compile_(text: str, exc: type[Exception] = exc) -> str:
                if "!" in text:
                    raise exc("bad")
                return text

            setattr(module, function, compile_)
            setattr(module, error, exc)
            mp.setitem(sys.modules, f"meshline.transforms.{name}", module)
        yield


def _load(text: str | bytes, strict: bool = True) -> LoadResult | None:
    try:
        result = load_text(text, "fuzz.yaml", params={}, env={"HOME": "/h"}, strict=strict)
    except SpecError as e:
        assert e.problems
        assert all(isinstance(p, Problem) and p.severity == "error" for p in e.problems)
        assert all(str(p).startswith("fuzz.yaml") for p in e.problems)
        return None
    assert all(p.severity == "warning" for p in result.warnings)
    return result


@SETTINGS
@given(st.binary(max_size=300))
def test_random_bytes(data):
    _load(data)


@SETTINGS
@given(st.binary(max_size=200))
def test_random_bytes_from_a_file(data):
    fd, path = tempfile.mkstemp(suffix=".yaml")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        try:
            load_file(path, env={})
        except SpecError:
            pass
    finally:
        os.unlink(path)


_TOKENS = [*":-[]{}#&*!|>'\"%@`,?\n \t\r\\abcxyz019.$~<=", "${params.", "${env.", "---\n", "  ", "<<"]
YAMLISH = st.lists(st.sampled_from(_TOKENS), max_size=80).map("".join)


@SETTINGS
@given(YAMLISH)
def test_random_yaml_ish_text(text):
    _load(text)
    _load(text, strict=False)


@SETTINGS
@given(st.text(max_size=150))
def test_random_unicode_text(text):
    _load(text)


_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**6), max_value=10**6)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(
        ["${params.x}", "${env.HOME}", "$${", "200ms", "file", "jq", "es", "kafka", "t", "s", "!x"]
    )
)
VALUES = st.recursive(
    _SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@SETTINGS
@given(VALUES)
def test_random_structures_dumped_to_yaml(value):
    _load(yaml.safe_dump(value))
    _load(yaml.safe_dump_all([value, {"apiVersion": value}]))


BASE: dict[str, Any] = {
    "apiVersion": "meshline.dev/v1alpha1",
    "kind": "Integration",
    "metadata": {"name": "x", "description": "d"},
    "spec": {
        "parameters": [{"name": "p", "default": "v", "secret": True}],
        "sources": [{"name": "s", "type": "file", "config": {"path": "${params.p}"}}],
        "transformations": [{"name": "n", "type": "jq", "config": {"path": "."}}],
        "targets": [{"name": "t", "type": "es", "config": {"hosts": ["h"], "window": "60s"}}],
        "triggers": [
            {
                "name": "tr",
                "sources": ["s"],
                "filters": [{"all": [{"jq": "true"}, {"not": {"cesql": "a = 1"}}]}, {"exact": {"type": "x"}}],
                "steps": ["n"],
                "target": "t",
                "delivery": {"retries": 1, "backoff": {"policy": "linear", "delay": "1s", "max": "2s"}},
            }
        ],
        "deadLetter": "t",
        "tests": [{"name": "c", "inputs": {"s": [{"type": "x", "data": {}}]}, "expect": {"t": []}}],
    },
}


def _paths(value: Any, path: tuple = ()) -> list[tuple]:
    out = [path]
    if isinstance(value, dict):
        for k, v in value.items():
            out.extend(_paths(v, (*path, k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.extend(_paths(v, (*path, i)))
    return out


def test_the_base_document_is_valid():
    result = _load(yaml.safe_dump(BASE))
    assert result is not None and result.integrations[0].name == "x"


@SETTINGS
@given(st.data())
def test_mutated_valid_documents(data):
    document = copy.deepcopy(BASE)
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        paths = [p for p in _paths(document) if p]
        if not paths:
            break
        path = data.draw(st.sampled_from(paths))
        parent: Any = document
        for part in path[:-1]:
            parent = parent[part]
        if data.draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = data.draw(VALUES)
    _load(yaml.safe_dump(document))
    _load(yaml.safe_dump(document), strict=False)
