"""The resolve phase: each config parsed once per process, carried typed (and picklable) to the workers;
config problems as data; one answer to "is this run unbounded"."""

from __future__ import annotations

import ast
import collections
import dataclasses
import json
import pickle
from pathlib import Path
from typing import Any

import apache_beam as beam
import pytest

from meshline import config as config_module
from meshline.compiler import build_pipeline, plan_triggers
from meshline.compiler.preflight import preflight
from meshline.config import doc, parse_config, read_config
from meshline.errors import ConfigError, ConfigProblem
from meshline.runners import in_process_runner
from meshline.spec import load_file, load_text
from meshline.spec.resolve import resolve
from meshline.transforms.steps import JqConfig

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> collections.Counter[str]:
    """Every parse of a whole component config in this process, by config class name."""
    seen: collections.Counter[str] = collections.Counter()
    build = config_module._build

    def counting(cls: type, config: dict[str, Any], prefix: tuple[Any, ...], problems: list[Any]) -> Any:
        if prefix == ():  # nested dataclasses are part of their component's parse
            seen[cls.__name__] += 1
        return build(cls, config, prefix, problems)

    monkeypatch.setattr(config_module, "_build", counting)
    return seen


def _integration_file(tmp_path: Path) -> tuple[Path, Path]:
    source = tmp_path / "in.jsonl"
    events = [
        {"specversion": "1.0", "id": str(i), "source": "s", "type": "order", "data": {"n": i}}
        for i in range(5)
    ]
    source.write_text("".join(json.dumps(e) + "\n" for e in events))
    out = tmp_path / "out"
    text = f"""\
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {{name: parsed-once}}
spec:
  sources:
    - {{name: in, type: file, config: {{path: "{source}"}}}}
  transformations:
    - {{name: double, type: jq, config: {{program: '.data.n *= 2', scope: event}}}}
    - name: shape
      type: mapping
      config: {{context: [{{operation: add, paths: [{{key: Extensions.team, value: emea}}]}}]}}
  targets:
    - {{name: out, type: file, config: {{path: "{out}", format: jsonl}}}}
    - {{name: rejects, type: log}}
  triggers:
    - {{name: a, sources: [in], filters: [{{jq: '.data.n > 1'}}], steps: [double], target: out}}
    - {{name: b, sources: [in], steps: [shape], target: out}}
  deadLetter: rejects
"""
    path = tmp_path / "it.yaml"
    path.write_text(text)
    return path, out


def test_each_config_is_parsed_once_per_process_across_validate_build_and_a_run(
    tmp_path: Path, parses: collections.Counter[str]
) -> None:
    path, out = _integration_file(tmp_path)
    (integration,) = load_file(path).integrations  # parse → … → references (validate) → model
    resolved = resolve(integration)
    assert preflight(resolved) == []
    pipeline = beam.Pipeline(runner=in_process_runner())
    build_pipeline(resolved, pipeline, options={"runner": "direct"})
    pipeline.run().wait_until_finish()  # the workers (in this process) build the steps and the chain

    written = [json.loads(line) for f in sorted(out.rglob("*.jsonl")) for line in f.read_text().splitlines()]
    assert sorted(e["data"]["n"] for e in written if "team" not in e) == [4, 6, 8]  # jq: n > 1, doubled
    assert sorted(e["data"]["n"] for e in written if e.get("team") == "emea") == [0, 1, 2, 3, 4]
    assert dict(parses) == {
        "FileSourceConfig": 1,
        "JqConfig": 1,
        "MappingConfig": 1,
        "FileTargetConfig": 1,
        "LogConfig": 1,
    }


def test_a_model_built_without_the_loader_is_parsed_by_resolve_once(
    tmp_path: Path, parses: collections.Counter[str]
) -> None:
    path, _ = _integration_file(tmp_path)
    (integration,) = load_file(path).integrations
    bare = dataclasses.replace(
        integration,
        transformations=tuple(dataclasses.replace(t, parsed=None) for t in integration.transformations),
    )
    parses.clear()
    resolved = resolve(bare)
    plan_triggers(resolved)
    assert dict(parses) == {"JqConfig": 1, "MappingConfig": 1}
    assert isinstance(resolved.transformation("double").config, JqConfig)


SECRET_STEP = """\
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {name: secret-step}
spec:
  parameters:
    - {name: token, secret: true, required: true}
  sources:
    - {name: in, type: generate, config: {count: 1}}
  transformations:
    - name: call
      type: http
      config:
        url: http://127.0.0.1:9/
        headers: {Authorization: "Bearer ${params.token}", X-Trace: plain}
        token: ${params.token}
  targets:
    - {name: out, type: log}
  triggers:
    - {name: t, steps: [call], target: out}
"""


def test_typed_configs_reach_the_workers_pickled_without_their_secrets() -> None:
    token = "s3cr3t-T0KEN-value"
    (integration,) = load_text(SECRET_STEP, "s.yaml", params={"token": token}).integrations
    resolved = resolve(integration)
    ((plan,),) = plan_triggers(resolved).values()
    (step,) = plan.steps
    assert step.config is resolved.transformation("call").config  # the validated dataclass itself
    data = pickle.dumps(plan)
    assert token.encode() not in data
    again = pickle.loads(data)  # this process's store has the value, as the direct runner's workers do
    assert again == plan
    assert again.steps[0].config.token == token
    assert again.steps[0].config.headers["Authorization"] == f"Bearer {token}"
    for rc in (*resolved.sources, *resolved.transformations, *resolved.targets):
        assert pickle.loads(pickle.dumps(rc.config)) == rc.config


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Inner:
    port: int = doc("a port")


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Outer:
    name: str = doc("a name")
    hosts: list[_Inner] = doc("hosts", [])
    mode: str = doc("a mode", "a")

    def __post_init__(self) -> None:
        if self.mode == "b" and not self.hosts:
            raise ConfigError("mode: 'b' needs hosts")


def test_config_problems_are_data_with_path_kind_and_message() -> None:
    value, problems = read_config(_Outer, {"nmae": "x", "hosts": [{"port": 1}, {"port": "eighty"}]})
    assert value is None
    assert problems == [
        ConfigProblem(
            ("nmae",),
            "unknown-key",
            "unknown key (expected one of: hosts, mode, name)",
            ("hosts", "mode", "name"),
        ),
        ConfigProblem(("name",), "missing-key", "required key is missing"),
        ConfigProblem(("hosts", 1, "port"), "invalid", "expected an integer, got 'eighty'"),
    ]
    assert [p.key for p in problems] == ["nmae", "name", "hosts[1].port"]
    with pytest.raises(ConfigError) as raised:
        parse_config(_Outer, {"name": "x", "mode": "b"})
    assert raised.value.problems == (ConfigProblem(("mode",), "rule", "'b' needs hosts"),)
    assert str(raised.value) == "mode: 'b' needs hosts"
    assert read_config(_Outer, {"name": "x", "hosts": [{"port": "80"}]}) == (
        _Outer(name="x", hosts=[_Inner(port=80)]),
        [],
    )


def test_unbounded_and_redelivering_are_answered_by_the_resolved_integration() -> None:
    text = SECRET_STEP.replace("config: {count: 1}", "config: {rate: 5}")
    (integration,) = load_text(text, "s.yaml", params={"token": "x"}).integrations
    resolved = resolve(integration)
    assert (resolved.unbounded, resolved.redelivering) == (True, False)
    from meshline import registry

    assert not hasattr(registry, "is_unbounded") and not hasattr(registry, "is_redelivering")


_TYPED_NAMES = ("integration", "decl", "ctx")


def test_no_integration_decl_or_ctx_parameter_is_typed_any() -> None:
    """Such a parameter says what it is (an Integration, a ComponentDecl, a BuildContext …), never Any."""
    found = []
    for path in sorted((ROOT / "meshline").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            args = node.args
            for arg in (*args.posonlyargs, *args.args, *args.kwonlyargs):
                if arg.arg not in _TYPED_NAMES:
                    continue
                annotation = ast.unparse(arg.annotation) if arg.annotation else ""
                if not annotation or "Any" in annotation.replace("'", "").replace('"', "").split(" | "):
                    found.append(
                        f"{path.relative_to(ROOT)}:{node.lineno}: {node.name}({arg.arg}: {annotation or '?'})"
                    )
    assert found == []
