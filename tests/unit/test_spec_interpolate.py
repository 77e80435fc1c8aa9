"""Phase 2: ${params.NAME} / ${env.NAME} substitution (meshline.spec.interpolate)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from meshline import registry
from meshline.config import doc
from meshline.errors import SpecError
from meshline.spec import interpolate, load_text
from meshline.spec.findings import Finding


def _doc(parameters: list[dict], **spec) -> dict:
    return {"metadata": {"name": "x"}, "spec": {"parameters": parameters, **spec}}


def _texts(findings: list[Finding]) -> list[str]:
    return [f"{f.severity}: {f.text()}" for f in findings]


def test_references_anywhere_in_a_string_and_several_per_string():
    data = _doc(
        [{"name": "host"}, {"name": "port", "default": 9200}], url="http://${params.host}:${params.port}/x"
    )
    out = interpolate(data, params={"host": "es"}, env={})
    assert out.findings == []
    assert out.data["spec"]["url"] == "http://es:9200/x"


def test_env_references():
    data = _doc([], targets=[{"config": {"region": "${env.REGION}", "list": ["a-${env.REGION}"]}}])
    out = interpolate(data, env={"REGION": "eu"})
    assert out.data["spec"]["targets"] == [{"config": {"region": "eu", "list": ["a-eu"]}}]


def test_double_dollar_is_a_literal():
    data = _doc([{"name": "a", "default": "A"}], text="$${params.a} and ${params.a} and $$ and $x")
    out = interpolate(data, env={})
    assert out.data["spec"]["text"] == "${params.a} and A and $$ and $x"


def test_whole_string_reference_keeps_a_typed_default():
    data = _doc(
        [{"name": "n", "default": 5}, {"name": "flag", "default": True}], n="${params.n}", f="${params.flag}"
    )
    out = interpolate(data, env={})
    assert out.data["spec"]["n"] == 5
    assert out.data["spec"]["f"] is True
    out = interpolate(data, params={"n": "7"}, env={})
    assert out.data["spec"]["n"] == "7"


def test_caller_value_wins_over_default_and_optional_without_value_is_empty():
    data = _doc([{"name": "a", "default": "d"}, {"name": "b"}], x="${params.a}|${params.b}|")
    assert interpolate(data, params={"a": "given"}, env={}).data["spec"]["x"] == "given||"
    assert interpolate(data, env={}).data["spec"]["x"] == "d||"


def test_input_is_not_modified():
    data = _doc([{"name": "a", "default": "d"}], x="${params.a}")
    interpolate(data, env={})
    assert data["spec"]["x"] == "${params.a}"


def test_missing_required_parameters_are_all_named_once_each_at_the_first_reference():
    data = _doc(
        [
            {"name": "queue", "required": True},
            {"name": "region", "required": True},
            {"name": "unused", "required": True},
        ],
        a="${params.queue}",
        b="${params.queue}-${params.region}",
    )
    out = interpolate(data, env={}, strict=True)
    assert _texts(out.findings) == [
        "error: spec.a: missing value for required parameter 'queue' (pass --param queue=VALUE)",
        "error: spec.b: missing value for required parameter 'region' (pass --param region=VALUE)",
        "error: spec.parameters[2]: missing value for required parameter 'unused' (pass --param "
        "unused=VALUE)",
    ]
    assert out.placeholders == {("spec", "a"), ("spec", "b")}
    assert out.data["spec"]["b"] == "${params.queue}-${params.region}"


def test_required_parameter_with_a_default_is_not_missing():
    data = _doc([{"name": "q", "required": True, "default": "x"}], a="${params.q}")
    assert interpolate(data, env={}).findings == []


def test_non_strict_mode_warns_and_keeps_a_placeholder():
    data = _doc([{"name": "queue", "required": True}], a="${params.queue}", b="${env.HOME_DIR}")
    out = interpolate(data, env={}, strict=False)
    assert _texts(out.findings) == [
        "warning: spec.a: missing value for required parameter 'queue' (pass --param queue=VALUE); "
        "checked with a placeholder",
        "warning: spec.b: environment variable 'HOME_DIR' is not set (referenced as ${env.HOME_DIR}); "
        "checked with a placeholder",
    ]
    assert out.data["spec"] == {**data["spec"], "a": "${params.queue}", "b": "${env.HOME_DIR}"}
    assert out.under_placeholder(("spec", "a"))
    assert out.under_placeholder(("spec", "b", "x"))
    assert not out.under_placeholder(("spec",))


def test_missing_env_var_is_an_error_in_strict_mode():
    data = _doc([], a="${env.A}", b="${env.B}", c="${env.A}")
    assert _texts(interpolate(data, env={}).findings) == [
        "error: spec.a: environment variable 'A' is not set (referenced as ${env.A})",
        "error: spec.b: environment variable 'B' is not set (referenced as ${env.B})",
    ]


def test_unknown_parameter_suggests_the_closest_declared_one():
    data = _doc([{"name": "queue_url"}, {"name": "region"}], a="${params.queu_url}")
    assert _texts(interpolate(data, env={}, strict=False).findings) == [
        "error: spec.a: unknown parameter 'queu_url' in ${params.queu_url}; did you mean 'queue_url'? "
        "(declared parameters: queue_url, region)"
    ]
    data = {"spec": {"a": "${params.x}"}}
    assert _texts(interpolate(data, env={}).findings) == [
        "error: spec.a: unknown parameter 'x' in ${params.x} (no parameters are declared; add it to "
        "spec.parameters)"
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "${foo}",
            "invalid reference '${foo}': expected ${params.NAME} or ${env.NAME} (write $${ for a literal ${)",
        ),
        (
            "a ${params.} b",
            "invalid reference '${params.}': expected ${params.NAME} or ${env.NAME} (write "
            "$${ for a literal ${)",
        ),
        ("${params.x", "unterminated reference '${params.x': expected ${params.NAME} or ${env.NAME}"),
    ],
)
def test_malformed_references(text, message):
    out = interpolate(_doc([{"name": "x"}], a=text), env={})
    assert _texts(out.findings) == [f"error: spec.a: {message}"]


def test_parameters_section_may_use_env_but_not_params():
    data = _doc(
        [{"name": "url", "default": "${env.URL}"}, {"name": "b", "default": "${params.url}"}],
        a="${params.url}",
    )
    out = interpolate(data, env={"URL": "http://u"})
    assert out.data["spec"]["a"] == "http://u"
    assert _texts(out.findings) == [
        "error: spec.parameters[1].default: a parameter cannot refer to another parameter (${params.url})"
    ]


def test_keys_are_not_interpolated_and_non_strings_are_left_alone():
    data = _doc([], m={"${env.X}": 1, "n": [1, 2.5, None, True]})
    out = interpolate(data, env={})
    assert out.data["spec"]["m"] == {"${env.X}": 1, "n": [1, 2.5, None, True]}
    assert out.findings == []


@dataclass(frozen=True, kw_only=True)
class _MarkedConfig:
    password: str = doc("a password", "", secret=True)
    api_key: str = doc("a key", "", secret=True)
    url: str = doc("a url", "", secret="url")
    headers: dict[str, str] = doc("headers", {}, secret="keys")
    index: str = doc("an index", "")
    hosts: list[str] = doc("hosts", [])


@pytest.fixture
def marked_registry(monkeypatch):
    component = registry.Component(id="m", kind="target", config=_MarkedConfig, build=print, description="m")
    monkeypatch.setattr(registry, "lookup", lambda kind, type_id: component)


def test_secrets_are_collected_from_parameters_and_field_marks(marked_registry):
    data = _doc(
        [
            {"name": "pw", "secret": True},
            {"name": "tok"},
            {"name": "plain"},
            {"name": "dflt", "secret": True, "default": "d3f"},
        ],
        targets=[
            {
                "type": "m",
                "config": {
                    "password": "${params.pw}",
                    "api_key": "${env.KEY}",
                    "headers": {"Authorization": "Bearer ${params.tok}", "X-Index": "${params.plain}"},
                    "index": "${params.plain}",
                    "hosts": ["${env.HOST}"],
                    "url": "amqp://app:${env.URLPW}@${env.HOST}/",
                },
            }
        ],
    )
    out = interpolate(
        data,
        params={"pw": "hunter2", "tok": "t0k3n", "plain": "orders"},
        env={"KEY": "k3y", "HOST": "h", "URLPW": "u-pw"},
    )
    # secret parameters (used or not), values of marked fields, URL passwords; never plain values
    assert out.secrets == {"hunter2", "k3y", "t0k3n", "d3f", "u-pw"}
    config = out.data["spec"]["targets"][0]["config"]
    assert [type(config[k]).__name__ for k in ("password", "api_key", "url", "index")] == [
        "Secret",
        "Secret",
        "Secret",
        "str",
    ]
    assert config["url"] == "amqp://app:u-pw@h/" and config["url"].template == "amqp://app:${env.URLPW}@h/"
    assert config["headers"]["Authorization"].template == "Bearer ${params.tok}"
    assert type(config["headers"]["X-Index"]) is str
    assert repr(config).count("***") == 4 and "hunter2" not in repr(config) and "u-pw" not in repr(config)
    assert out.references == {
        "params.pw": "value",
        "env.KEY": "env",
        "params.tok": "value",
        "env.URLPW": "env",
    }


@dataclass(frozen=True, kw_only=True)
class _AnyConfig:
    url: str = doc("a url", "")
    region: str = doc("a region", "")
    home: str = doc("a directory", "")


@pytest.fixture
def fake_registry(monkeypatch):
    component = registry.Component(
        id="fake", kind="source", config=_AnyConfig, build=print, description="fake"
    )
    monkeypatch.setattr(registry, "lookup", lambda kind, type_id: component)
    monkeypatch.setattr(registry, "ids", lambda kind: ["fake"])
    monkeypatch.setattr(registry, "planned_ids", lambda kind: [])


def test_load_text_reports_missing_parameters_with_location(fake_registry):
    text = (
        "apiVersion: meshline.dev/v1alpha1\n"
        "kind: Integration\n"
        "metadata: {name: x}\n"
        "spec:\n"
        "  parameters:\n"
        "    - {name: queue_url, required: true}\n"
        "    - {name: region, required: true}\n"
        "  sources:\n"
        "    - name: s\n"
        "      type: generate\n"
        "      config: {url: '${params.queue_url}', region: '${params.region}', home: '${env.NOPE}'}\n"
        "  targets: [{name: t, type: log}]\n"
        "  triggers: [{name: tr, target: t}]\n"
    )
    with pytest.raises(SpecError) as info:
        load_text(text, "x.yaml", env={})
    lines = str(info.value).splitlines()
    assert lines == [
        "x.yaml:11:21: spec.sources[0].config.url: missing value for required parameter 'queue_url' "
        "(pass --param queue_url=VALUE)",
        "x.yaml:11:52: spec.sources[0].config.region: missing value for required parameter 'region' "
        "(pass --param region=VALUE)",
        "x.yaml:11:78: spec.sources[0].config.home: environment variable 'NOPE' is not set (referenced as "
        "${env.NOPE})",
    ]


def test_validate_mode_accepts_missing_values_with_warnings(fake_registry):
    text = (
        "apiVersion: meshline.dev/v1alpha1\n"
        "kind: Integration\n"
        "metadata: {name: x}\n"
        "spec:\n"
        "  parameters: [{name: url, required: true}, {name: pw, secret: true}]\n"
        "  sources: [{name: s, type: fake, config: {url: '${params.url}', region: '${params.pw}'}}]\n"
        "  targets: [{name: t, type: fake}]\n"
        "  triggers: [{name: tr, target: t, delivery: {backoff: {delay: '${env.DELAY}'}, deadLetter: t}}]\n"
    )
    result = load_text(text, "x.yaml", params={"pw": "s3cr3t!"}, env={}, strict=False)
    assert [str(w) for w in result.warnings] == [
        "x.yaml:6:49: warning: spec.sources[0].config.url: missing value for required parameter 'url' "
        "(pass --param url=VALUE); checked with a placeholder",
        "x.yaml:8:64: warning: spec.triggers[0].delivery.backoff.delay: environment variable 'DELAY' is not "
        "set "
        "(referenced as ${env.DELAY}); checked with a placeholder",
    ]
    (integration,) = result.integrations
    assert integration.source("s").config == {"url": "${params.url}", "region": "s3cr3t!"}
    assert integration.redactor.redact("pw=s3cr3t!") == "pw=***"


def test_unknown_cli_param_is_an_error_when_strict(fake_registry):
    text = (
        "apiVersion: meshline.dev/v1alpha1\nkind: Integration\nmetadata: {name: x}\n"
        "spec:\n  parameters: [{name: region}]\n"
        "  sources: [{name: s, type: fake}]\n  targets: [{name: t, type: fake}]\n"
        "  triggers: [{name: tr, target: t}]\n  deadLetter: t\n"
    )
    with pytest.raises(SpecError) as info:
        load_text(text, "x.yaml", params={"regoin": "eu"}, env={})
    assert str(info.value) == (
        "x.yaml: --param regoin: no parameter 'regoin' is declared; did you mean 'region'? "
        "(declared parameters: region)"
    )
    result = load_text(text, "x.yaml", params={"regoin": "eu"}, env={}, strict=False)
    assert [w.severity for w in result.warnings] == ["warning"]
