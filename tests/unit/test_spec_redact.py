"""Secrets never reach error messages or printed configs (meshline.spec.redact and the loader)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from meshline import registry
from meshline.config import doc, is_secret_key
from meshline.errors import SpecError
from meshline.spec import Redactor, load_text, redact_config


@pytest.mark.parametrize(
    "name",
    [
        "password",
        "sasl.password",
        "Authorization",
        "X-API-Key",
        "api_key",
        "token",
        "ssl.key.password",
        "key",
    ],
)
def test_credential_entries_of_free_form_mappings(name):
    assert is_secret_key(name)


@pytest.mark.parametrize(
    "name", ["path", "index", "routing_key", "key_name", "region", "hosts", "username", 3]
)
def test_plain_entries(name):
    assert not is_secret_key(name)


def test_redactor_masks_every_occurrence_longest_first():
    redactor = Redactor(["abc", "abcdef", "", None])
    assert redactor.redact("x abcdef y abc z") == "x *** y *** z"
    assert redactor.secrets == {"abc", "abcdef"}
    assert "abc" not in repr(redactor)


def test_redactor_masks_json_escaped_form():
    redactor = Redactor(['p"w\\'])
    assert redactor.redact('{"password": "p\\"w\\\\"}') == '{"password": "***"}'


def test_redact_config_by_field_marks_and_by_value():
    redactor = Redactor(["hunter2"])
    config = {
        "hosts": ["http://user:pw-in-url@es"],
        "password": "whatever",
        "token": None,
        "index": "hunter2-index",
        "headers": {"Authorization": "Bearer abc", "X-Trace": "on"},
    }
    assert redactor.redact_config(config, _Config) == {
        "hosts": ["http://user:***@es"],
        "password": "***",
        "token": None,
        "index": "***-index",
        "headers": {"Authorization": "***", "X-Trace": "on"},
    }
    assert config["password"] == "whatever"  # not modified
    # without a config class only known values and URL passwords are masked: no guessing by key name
    assert redact_config({"password": "p", "url": "amqp://u:p2@h/"}) == {
        "password": "p",
        "url": "amqp://u:***@h/",
    }


def test_merged_redactor():
    both = Redactor(["aaa"]).merged(Redactor(["bbb"]))
    assert both.redact("aaa bbb") == "*** ***"


@dataclass(frozen=True, kw_only=True)
class _Config:
    hosts: list[str] = doc("Hosts.", secret="url")
    password: str = doc("Password.", "", secret=True)
    token: str = doc("Token.", "", secret=True)
    index: str = doc("Index.", "")
    headers: dict[str, str] = doc("Headers.", {}, secret="keys")


@pytest.fixture
def fake_registry(monkeypatch):
    component = registry.Component(id="es", kind="target", config=_Config, build=print, description="es")
    monkeypatch.setattr(registry, "lookup", lambda kind, type_id: component)
    monkeypatch.setattr(registry, "ids", lambda kind: ["es"])
    monkeypatch.setattr(registry, "planned_ids", lambda kind: [])


TEXT = """\
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {name: x}
spec:
  parameters:
    - {name: pw, secret: true}
  sources: [{name: s, type: es, config: {hosts: [a]}}]
  targets:
    - name: t
      type: es
      config: {hosts: "${params.pw}", password: "${params.pw}", token: "${env.TOKEN}"}
  triggers:
    - name: tr
      target: t
      delivery: {retries: "${params.pw}", deadLetter: "${env.TOKEN}"}
"""


def test_secret_values_never_appear_in_errors(fake_registry):
    with pytest.raises(SpecError) as info:
        load_text(TEXT, "x.yaml", params={"pw": "hunter2"}, env={"TOKEN": "tok-123"})
    text = str(info.value)
    assert "hunter2" not in text and "tok-123" not in text
    assert text.splitlines() == [
        "x.yaml:11:23: spec.targets[0].config.hosts: expected a list, got '***'",
        "x.yaml:15:27: spec.triggers[0].delivery.retries: expected an integer, found the string '***'",
        "x.yaml:15:55: spec.triggers[0].delivery.deadLetter: no target named '***' (targets: t)",
    ]


def test_secret_values_are_masked_in_the_loaded_model(fake_registry):
    text = TEXT.replace('hosts: "${params.pw}"', "hosts: [h]").replace(
        'delivery: {retries: "${params.pw}", deadLetter: "${env.TOKEN}"}', "delivery: {deadLetter: t}"
    )
    result = load_text(text, "x.yaml", params={"pw": "hunter2"}, env={"TOKEN": "tok-123"})
    (it,) = result.integrations
    config = it.target("t").config
    assert config == {"hosts": ["h"], "password": "hunter2", "token": "tok-123"}
    assert it.redactor.redact_config(config) == {"hosts": ["h"], "password": "***", "token": "***"}
    assert it.redactor.redact_config(config, _Config) == {"hosts": ["h"], "password": "***", "token": "***"}
    assert repr(it.target("t")) == (
        "ComponentDecl(name='t', type='es', config={'hosts': ['h'], 'password': '***', 'token': '***'}, "
        "line=9, kind='target')"
    )
    assert it.redactor.redact("connecting with hunter2 and tok-123") == "connecting with *** and ***"
    assert "hunter2" not in repr(it) and "tok-123" not in repr(it)
