"""Every secret-marked config field of every registered component never shows.

The fields come from the declarations (``doc(..., secret=...)`` marks, read through the
registry), not from a list written here; so does the config each case starts from: the
required keys get values by their schema type, and the keys a problem names get the next
value that fits, until the config is valid (:func:`minimal_config`). A component whose
secret field cannot be given a valid config this way fails the test with the problems.

Each case writes a recognisable secret (``S3CR3T-kind-id-field``, a URL with
``user:S3CR3T…@``, a mapping entry named like a credential) into an integration file and
checks it is nowhere a user sees it: ``meshline validate`` of the file with a mistake in
that component, ``meshline graph`` in every format (svg and png only when Graphviz is
installed), the ``repr``/``str`` of the model objects and of the parsed config dataclass,
a config dataclass built from plain strings, and the JSON Schema marks the field
``writeOnly``. The raw file text holds the secret (the control: the check can fail).
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from meshline import registry
from meshline.cli import main
from meshline.config import SecretMark, config_problems, parse_config
from meshline.errors import ConfigError, ConfigProblem
from meshline.graph import FORMATS
from meshline.registry import Component
from meshline.spec import load_text

KINDS = ("source", "target", "transformation")
_SECTIONS = {"source": "sources", "target": "targets", "transformation": "transformations"}


def marked_fields() -> Iterator[tuple[str, str, str, SecretMark]]:
    for kind in KINDS:
        for type_id in registry.ids(kind):  # type: ignore[arg-type]
            component = registry.lookup(kind, type_id)  # type: ignore[arg-type]
            assert component is not None
            for path, mark in component.secret_marks.items():
                yield kind, type_id, path, mark


CASES = list(marked_fields())
IDS = [f"{k}-{t}-{f}" for k, t, f, _ in CASES]


def test_the_registry_declares_secret_fields_of_every_mark() -> None:
    """The control for the parametrised tests: they have cases, of each kind of mark."""
    assert {mark for *_, mark in CASES} == {True, "url", "keys"}
    assert ("source", "amqp", "url", "url") in CASES


# --------------------------------------------------------------------------- a minimal valid config


def _candidates(schema: dict[str, Any]) -> list[Any]:
    """Values of a JSON Schema's type to try, in order (a mistake names the key: the next one is tried)."""
    if "enum" in schema:
        return list(schema["enum"])
    if "anyOf" in schema:
        return [c for s in schema["anyOf"] for c in _candidates(s)]
    kind = schema.get("type")
    if kind == "array":
        return [[c] for c in _candidates(schema.get("items") or {"type": "string"})]
    return {
        "string": ["xyz1", "http://h.example:1/q", "h.example:9092"],
        "integer": [8080, 1],
        "number": [1.0],
        "boolean": [True],
        "object": [{}],
    }.get(str(kind), ["xyz1"])


def secret_value(mark: SecretMark, schema: dict[str, Any], secret: str) -> list[Any]:
    """Values that hold ``secret`` where a field of this mark keeps it, in shapes that fit its type."""
    if mark == "url":
        shapes: list[Any] = [f"https://user:{secret}@h.example:1/", f"amqp://user:{secret}@h.example:1/"]
    elif mark == "keys":
        shapes = [{"Authorization": secret}, {"sasl.password": secret}]
    else:  # the whole value, or a connection string holding it
        shapes = [
            secret,
            f"Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey={secret};"
            "EntityPath=hub",
            f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={secret};EndpointSuffix=core.windows.net",
        ]
    if schema.get("type") == "array":
        return [[s] for s in shapes]
    return shapes


def token(component: Component, field: str) -> str:
    return f"S3CR3T-{component.kind}-{component.id}-{field}"


def _property(schema: dict[str, Any], path: str) -> dict[str, Any]:
    """The schema of the field at a dotted ``path`` (a nested config, or a list of them, on the way)."""
    *outer, last = path.split(".")
    for part in outer:
        schema = schema["properties"][part]
        schema = schema.get("items", schema) if schema.get("type") == "array" else schema
    return dict(schema["properties"][last])


def minimal_config(component: Component, field: str) -> dict[str, Any]:
    """A valid config of ``component`` with the secret-marked ``field`` set (top-level fields)."""
    schema = component.schema()
    props = schema["properties"]
    marks = component.secret_marks
    options: dict[str, list[Any]] = {}

    def add(name: str) -> None:
        if name in marks:  # a secret a rule asks for along (set both or neither): recognisable too
            options[name] = secret_value(marks[name], props[name], token(component, name))
        else:
            options[name] = _candidates(props[name])

    for name in [*schema.get("required", ()), field]:
        add(name)
    chosen = dict.fromkeys(options, 0)
    problems: list[ConfigProblem] = []
    for _ in range(60):
        config = {k: options[k][chosen[k]] for k in options}
        problems = config_problems(component.config, config)
        if not problems:
            return config
        for problem in problems:
            key, message = problem.key, problem.message
            top = re.split(r"[.\[]", key)[0]
            named = [n for n in props if n != top and re.search(rf"\b{re.escape(n)}\b", message)]
            missing = [n for n in [top, *named] if n in props and n not in options]
            if missing:  # "needs username", "set both or neither": add the key, else what the rule names
                add(missing[0])
                chosen[missing[0]] = 0
                break
            if top in options and chosen[top] + 1 < len(options[top]):
                chosen[top] += 1
                break
        else:
            break
    pytest.fail(f"{component.kind} {component.id}: no valid config with {field} set: {problems}")


# --------------------------------------------------------------------------- the file around it


def integration(
    kind: str, type_id: str, config: dict[str, Any], *, secret_param: str | None = None
) -> dict[str, Any]:
    """An integration with the component ``c`` of ``kind``, ``type_id`` and ``config``, wired to a generate
    source and a log target; with ``secret_param``, a secret parameter holding it that a filter uses."""
    spec: dict[str, Any] = {"sources": [], "targets": [], "transformations": [], "triggers": []}
    spec[_SECTIONS[kind]].append({"name": "c", "type": type_id, "config": config})
    if kind != "source":
        spec["sources"].append(
            {"name": "s", "type": "generate", "config": {"count": 1, "event": {"type": "t"}}}
        )
    if kind != "target":
        spec["targets"].append({"name": "t", "type": "log"})
    trigger: dict[str, Any] = {"name": "tr", "target": "c" if kind == "target" else "t"}
    if kind == "transformation":
        trigger["steps"] = ["c"]
    if secret_param is not None:
        spec["parameters"] = [{"name": "pw", "secret": True, "default": secret_param}]
        trigger["filters"] = [{"exact": {"subject": "${params.pw}"}}]
    spec["triggers"].append(trigger)
    return {
        "apiVersion": "meshline.dev/v1alpha1",
        "kind": "Integration",
        "metadata": {"name": "leak"},
        "spec": spec,
    }


def _secrets_in(component: Component, config: dict[str, Any]) -> list[str]:
    return [token(component, name) for name in component.secret_marks if name in config]


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    status = main(list(argv))
    out = capsys.readouterr()
    return status, out.out + out.err


def _graphs(capsys: pytest.CaptureFixture[str], path: str) -> str:
    shown = ""
    for fmt in FORMATS:
        if fmt in ("svg", "png") and shutil.which("dot") is None:
            continue  # drawn by Graphviz from the dot text checked here
        status, text = _run(capsys, "graph", path, "--format", fmt)
        assert status == 0, text
        shown += text
    return shown


@pytest.mark.parametrize(("kind", "type_id", "field", "mark"), CASES, ids=IDS)
@pytest.mark.parametrize("given", ["literal", "param"])
def test_a_secret_field_shows_nowhere(tmp_path, capsys, kind, type_id, field, mark, given) -> None:
    component = registry.lookup(kind, type_id)
    assert component is not None
    config = minimal_config(component, field.split(".")[0])
    secrets = _secrets_in(component, config)
    assert token(component, field) in json.dumps(config)
    if given == "param":  # the field's secret as ${params.pw}, the parameter's default holding it
        config[field] = json.loads(json.dumps(config[field]).replace(token(component, field), "${params.pw}"))
        doc = integration(kind, type_id, config, secret_param=token(component, field))
    else:
        doc = integration(kind, type_id, config)
    path = tmp_path / "leak.yaml"

    # a mistake in the component: validate prints its problems
    broken = json.loads(json.dumps(doc))
    broken["spec"][_SECTIONS[kind]][0]["config"]["no_such_key"] = "x"
    path.write_text(json.dumps(broken))
    raw = path.read_text()
    assert all(s in raw for s in secrets)  # the control: the file holds every secret
    status, shown = _run(capsys, "validate", str(path))
    assert status == 1 and "no_such_key: unknown key" in shown, shown
    status, text = _run(capsys, "validate", "--format", "json", str(path))
    assert status == 1
    shown += text

    # the valid file: validate, every graph, the model and the config dataclasses
    path.write_text(json.dumps(doc))
    status, text = _run(capsys, "validate", str(path))
    assert status == 0, text
    graphs = _graphs(capsys, str(path))
    if given == "param":  # the filter comparing with the secret is drawn, the secret masked
        assert "&quot;subject&quot;:&quot;***&quot;" in graphs or 'subject\\":\\"***' in graphs, graphs
    (model,) = load_text(json.dumps(doc)).integrations
    decl = {"source": model.source, "target": model.target, "transformation": model.transformation}[kind]("c")
    parsed = parse_config(component.config, decl.config)
    plain = parse_config(component.config, config)  # plain strings: no Secret, the marks mask
    shown += text + graphs + repr(decl) + str(decl) + repr(model) + str(model)
    shown += repr(parsed) + str(parsed) + repr(plain) + repr([plain])
    for secret in secrets:
        assert secret not in shown
    assert "***" in repr(decl) and "***" in repr(parsed) and "***" in repr(plain)
    assert _property(component.schema(), field).get("writeOnly") is True


@pytest.mark.parametrize(
    ("kind", "type_id", "field", "mark"),
    [c for c in CASES if c[3] is True],
    ids=[i for i, c in zip(IDS, CASES, strict=True) if c[3] is True],
)
def test_a_secret_of_the_wrong_type_is_not_quoted(tmp_path, capsys, kind, type_id, field, mark) -> None:
    """``password: 98765432101`` (YAML reads a number) is refused without the number."""
    component = registry.lookup(kind, type_id)
    assert component is not None
    config = minimal_config(component, field.split(".")[0])
    config[field] = 98765432101
    path = tmp_path / "number.yaml"
    path.write_text(json.dumps(integration(kind, type_id, config)))
    assert "98765432101" in path.read_text()
    status, shown = _run(capsys, "validate", str(path))
    assert status == 1 and f"config.{field}: expected a string, got ***" in shown, shown
    with pytest.raises(ConfigError) as e:
        parse_config(component.config, config)
    assert "98765432101" not in shown + str(e.value)


def test_a_rule_quoting_a_plain_secret_is_masked() -> None:
    """A cross-field rule (``__post_init__``) that quotes a value: masked by the field marks."""
    component = registry.lookup("source", "amqp")
    assert component is not None
    with pytest.raises(ConfigError) as e:
        parse_config(component.config, {"url": "http://user:S3CR3T-rule@h.example/", "queue": "q"})
    assert "url:" in str(e.value) and "S3CR3T-rule" not in str(e.value)


@pytest.mark.parametrize("kind", KINDS)
def test_connectors_and_reference_pages_say_what_the_marks_say(capsys, kind) -> None:
    """``meshline connectors ID`` and the generated reference section show each field's marks,
    read from the schema: no description repeats them by hand."""
    from meshline import docgen
    from meshline.config import path_fields

    for type_id in registry.ids(kind):  # type: ignore[arg-type]
        component = registry.lookup(kind, type_id)  # type: ignore[arg-type]
        assert component is not None
        status, printed = _run(capsys, "connectors", type_id)
        assert status == 0
        section = printed.split(f"{kind} {type_id}:")[1].splitlines()[1:]
        section = section[
            : next((i for i, ln in enumerate(section) if not ln.startswith("  ")), len(section))
        ]
        lines = {ln.split(":")[0].strip().removesuffix(" (required)"): ln for ln in section}
        rows = {
            row.split("`")[1]: row
            for row in docgen.render_component(component).splitlines()
            if row.startswith("| `")
        }
        for key in lines:
            description = str(component.schema()["properties"][key].get("description", ""))
            assert "(secret" not in description and "relative to the integration" not in description, key
            secret, path = key in component.secret_marks, key in path_fields(component.config)
            assert ("(secret" in lines[key]) == secret and ("**Secret" in rows[key]) == secret, lines[key]
            assert ("relative to the integration file's directory" in lines[key]) == path, lines[key]
            assert ("relative to the integration file's directory" in rows[key]) == path, rows[key]
