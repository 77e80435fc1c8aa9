"""Secrets by reference (meshline.secrets): what pickles, what resolves where, what shows."""

from __future__ import annotations

import base64
import bz2
import copy
import json
import pickle
from dataclasses import dataclass
from types import SimpleNamespace

import orjson
import pytest
from apache_beam.internal import pickler

from meshline import registry, secrets
from meshline.cli import main
from meshline.config import config_schema, doc, parse_config
from meshline.errors import RunnerError
from meshline.events import CloudEvent, dead_letter
from meshline.runners.dataflow import check_secrets
from meshline.secrets import Secret, SecretError
from meshline.spec import interpolate, load_text

VALUE = "s3cr3t-Value/with+chars"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    monkeypatch.setenv("MESHLINE_SECRETS_DIR", str(tmp_path / "mounted"))
    for name in ("MESHLINE_PARAM_pw", "PW_VAR", "OTHER_VAR"):
        monkeypatch.delenv(name, raising=False)


def _secret(template: str = "${params.pw}", scope: str = "", value: str = VALUE, **kw) -> Secret:
    return Secret(template.replace("${params.pw}", value), template, scope=scope, **kw)


def _raw(payload: bytes) -> bytes:
    """What a pickled DoFn is inside a pipeline proto: base64 of a bz2 stream."""
    return bz2.decompress(base64.b64decode(payload))


@dataclass(frozen=True, kw_only=True)
class _Conn:
    url: str
    extra: dict
    pair: tuple


# --------------------------------------------------------------------------- the type


def test_the_value_works_as_a_string_and_never_shows_in_repr():
    s = _secret("amqp://app:${params.pw}@127.0.0.1/")
    assert s == f"amqp://app:{VALUE}@127.0.0.1/"
    # str(), formatting, json and orjson give the value: client libraries call str() on settings
    assert type(str(s)) is str and str(s) == s and f"{s}" == s and "%s" % s == s  # noqa: UP031
    assert json.dumps(s) == json.dumps(str(s)) and orjson.loads(orjson.dumps(s)) == str(s)
    assert s.encode() == str(s).encode() and s.startswith("amqp://")
    assert repr(s) == "'amqp://app:***@127.0.0.1/'"
    assert (
        VALUE not in repr({"url": s})
        and VALUE not in repr([s])
        and VALUE not in repr(_Conn(url=s, extra={}, pair=()))
    )
    assert copy.deepcopy(s) is s and copy.copy(s) is s
    assert repr(Secret(VALUE, "x-${params.pw}", whole=True)) == "'***'"


def test_pickles_only_the_template_and_resolves_from_the_store():
    secrets.store("scope-a", "params.pw", VALUE)
    s = _secret("amqp://app:${params.pw}@h/", scope="scope-a")
    conn = _Conn(url=s, extra={"nested": [s], "k": {"deep": s}}, pair=(s, "plain"))
    payload = pickler.dumps(conn)  # Beam's pickler (cloudpickle in 2.77)
    raw = _raw(payload)
    assert VALUE.encode() not in raw and b"${params.pw}" in raw
    back = pickler.loads(payload)
    assert back == conn and isinstance(back.url, Secret) and back.extra["k"]["deep"].template == s.template
    assert isinstance(back.pair[0], Secret) and back.pair[1] == "plain"
    # the standard library's pickle too, every protocol
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        data = pickle.dumps(s, protocol)
        assert VALUE.encode() not in data and pickle.loads(data) == s


def test_resolution_order_store_env_file_secret_manager(monkeypatch, tmp_path):
    sm = "projects/p/secrets/pw/versions/2"
    s = _secret(scope="other-scope", locators={"params.pw": f"secretmanager:{sm}"})
    payload = pickle.dumps(s)
    seen: list[str] = []

    class FakeClient:
        def access_secret_version(self, name):
            seen.append(name)
            return SimpleNamespace(payload=SimpleNamespace(data=b"from-secret-manager"))

    monkeypatch.setattr(secrets, "_secret_manager_client", FakeClient)
    assert pickle.loads(payload) == "from-secret-manager" and seen == [sm]  # 4. Secret Manager
    mounted = tmp_path / "mounted"
    mounted.mkdir()
    (mounted / "pw").write_text("from-file\n")
    assert pickle.loads(payload) == "from-file"  # 3. a mounted file (one trailing newline dropped)
    monkeypatch.setenv("MESHLINE_PARAM_pw", "from-env")
    assert pickle.loads(payload) == "from-env"  # 2. the environment
    secrets.store("other-scope", "params.pw", "from-store")
    assert pickle.loads(payload) == "from-store"  # 1. the store of this process
    assert seen == [sm]


def test_env_references_and_env_defaults(monkeypatch):
    s = Secret("v1", "${env.PW_VAR}", scope="nowhere")
    d = Secret("v2", "${params.pw}", scope="nowhere", locators={"params.pw": "env:OTHER_VAR"})
    monkeypatch.setenv("PW_VAR", "env-value")
    monkeypatch.setenv("OTHER_VAR", "default-env-value")
    assert pickle.loads(pickle.dumps(s)) == "env-value"
    assert pickle.loads(pickle.dumps(d)) == "default-env-value"


def test_unresolvable_names_the_parameter_never_the_value():
    payload = pickle.dumps(_secret(scope="gone"))
    with pytest.raises(SecretError) as e:
        pickle.loads(payload)
    text = str(e.value)
    assert "secret parameter pw" in text and "MESHLINE_PARAM_pw" in text and VALUE not in text
    with pytest.raises(SecretError, match=r"\$\{env.PW_VAR\}.*not set"):
        pickle.loads(pickle.dumps(Secret("x", "${env.PW_VAR}", scope="gone")))
    with pytest.raises(SecretError, match=r"written in the integration file at targets\.t\.config\.password"):
        pickle.loads(pickle.dumps(Secret("x", "${literal.targets.t.config.password}", scope="gone")))


def test_secret_manager_failure_is_one_line_naming_the_version(monkeypatch):
    class Broken:
        def access_secret_version(self, name):
            raise PermissionError("403 Permission denied on resource\nmore")

    monkeypatch.setattr(secrets, "_secret_manager_client", Broken)
    sm = "projects/p/secrets/pw/versions/1"
    with pytest.raises(SecretError) as e:
        pickle.loads(pickle.dumps(_secret(scope="x", locators={"params.pw": f"secretmanager:{sm}"})))
    assert (
        str(e.value)
        == f"parameter pw: cannot read the secret {sm}: PermissionError: 403 Permission denied on resource"
    )


def test_join_keeps_references():
    secrets.store("j", "params.pw", VALUE)
    key = _secret(scope="j", whole=True)
    joined = secrets.join("Endpoint=sb://h/;SharedAccessKey=", key, ";x=${y}")
    assert joined == f"Endpoint=sb://h/;SharedAccessKey={VALUE};x=${{y}}"
    assert VALUE.encode() not in pickle.dumps(joined) and pickle.loads(pickle.dumps(joined)) == joined
    assert repr(joined) == "'***'"
    assert type(secrets.join("a", "b")) is str


def test_mask_removes_known_values_and_url_passwords():
    secrets.remember("kn0wn-pass")
    text = 'failed: kn0wn-pass, "kn0wn-pass", kn0wn%2Dpass? http://u:p%40ss@h:9/x amqps://app:x@rabbit/v'
    assert (
        secrets.mask(text) == 'failed: ***, "***", kn0wn%2Dpass? http://u:***@h:9/x amqps://app:***@rabbit/v'
    )


# --------------------------------------------------------------------------- interpolation


@dataclass(frozen=True, kw_only=True)
class _Marked:
    password: str = doc("a password", "", secret=True)
    url: str = doc("a url", "", secret="url")
    headers: dict[str, str] = doc("headers", {}, secret="keys")
    name: str = doc("a name", "")


@pytest.fixture
def marked(monkeypatch):
    component = registry.Component(id="m", kind="target", config=_Marked, build=print, description="m")
    monkeypatch.setattr(registry, "lookup", lambda kind, type_id: component)


def _config(config: dict, params: dict | None = None, env: dict | None = None, declared=None) -> dict:
    data = {
        "metadata": {"name": "x"},
        "spec": {
            "parameters": declared or [{"name": "pw", "secret": True}],
            "targets": [{"type": "m", "config": config}],
        },
    }
    out = interpolate(data, params=params or {}, env=env or {}, scope="interp")
    return out.data["spec"]["targets"][0]["config"]


def test_interpolation_makes_secrets_only_where_declared(marked):
    c = _config(
        {
            "name": "${params.pw}-$${literal}",
            "password": "${env.PW_VAR}",
            "url": "amqp://app:${env.PW_VAR}@${env.HOST}/v",
            "headers": {"Authorization": "Bearer ${env.PW_VAR}", "X-Trace": "${env.HOST}"},
        },
        params={"pw": VALUE},
        env={"PW_VAR": "from-env", "HOST": "rabbit"},
    )
    assert (c["name"], c["name"].template) == (f"{VALUE}-${{literal}}", "${params.pw}-$${literal}")
    assert (c["password"], c["password"].template) == ("from-env", "${env.PW_VAR}")
    # the host is not secret: it is inlined; only the password part is a reference
    assert (c["url"], c["url"].template) == (
        "amqp://app:from-env@rabbit/v",
        "amqp://app:${env.PW_VAR}@rabbit/v",
    )
    assert c["headers"]["Authorization"].template == "Bearer ${env.PW_VAR}"
    assert type(c["headers"]["X-Trace"]) is str
    for value in (c["name"], c["password"], c["url"]):
        assert pickle.loads(pickle.dumps(value)) == value  # from this process's store


def test_literals_in_marked_fields_become_unnamed_secrets(marked):
    c = _config({"password": "written-in-file", "url": "http://u:lit-pw@h/", "name": "plain"})
    assert c["password"].template == "${literal.targets.0.config.password}"
    assert c["url"].template == "http://u:${literal.targets.0.config.url.0}@h/"
    assert type(c["name"]) is str
    assert b"written-in-file" not in pickle.dumps(c) and b"lit-pw" not in pickle.dumps(c)
    assert pickle.loads(pickle.dumps(c)) == c


def test_url_without_password_and_unmarked_fields_stay_plain(marked):
    c = _config({"url": "http://u@h/${env.HOST}", "name": "${env.HOST}"}, env={"HOST": "x"})
    assert type(c["url"]) is str and type(c["name"]) is str


def test_secret_manager_parameter_is_read_or_deferred(marked):
    sm = "projects/p/secrets/s/versions/1"
    data = {
        "metadata": {"name": "x"},
        "spec": {
            "parameters": [{"name": "pw", "secret": True}],
            "targets": [{"type": "m", "config": {"password": "${params.pw}"}}],
        },
    }
    read = interpolate(data, params={"pw": sm}, env={}, secret_manager=lambda name: f"read:{name}")
    password = read.data["spec"]["targets"][0]["config"]["password"]
    assert password == f"read:{sm}" and read.references == {"params.pw": "secretmanager"}
    deferred = interpolate(data, params={"pw": sm}, env={})
    password = deferred.data["spec"]["targets"][0]["config"]["password"]
    assert secrets.is_deferred(password) and password._locators == {"params.pw": f"secretmanager:{sm}"}


def test_schema_marks_secret_fields_write_only():
    schema = config_schema(_Marked)["properties"]
    assert schema["password"]["writeOnly"] is True
    assert schema["url"]["x-secret"] == "url" and schema["headers"]["x-secret"] == "keys"
    assert schema["url"]["writeOnly"] is True and schema["headers"]["writeOnly"] is True
    assert "writeOnly" not in schema["name"]
    with pytest.raises(TypeError):
        doc("x", secret="maybe")  # type: ignore[arg-type]


def test_parsed_configs_keep_secrets_and_mask_them_in_repr():
    s = _secret()
    parsed = parse_config(_Marked, {"password": s, "headers": {"Authorization": s}})
    assert isinstance(parsed.password, Secret) and isinstance(parsed.headers["Authorization"], Secret)
    assert VALUE not in repr(parsed)


# --------------------------------------------------------------------------- dead letters and Dataflow


def test_dead_letters_carry_no_known_secret_and_no_url_password():
    secrets.remember("dl-secret-1")
    event = CloudEvent({"specversion": "1.0", "id": "1", "source": "s", "type": "t"}, {"a": 1})
    out = dead_letter(
        event, ConnectionError("to http://elastic:pw-in-url@es:9200/_bulk with dl-secret-1"), "deliver"
    )
    assert out.attributes["meshlineerror"] == "ConnectionError: to http://elastic:***@es:9200/_bulk with ***"


DATAFLOW_YAML = """\
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {name: df}
spec:
  parameters:
    - {name: pw, secret: true}
    - {name: unused, secret: true, default: written-default}
  sources: [{name: s, type: generate, config: {count: 1, event: {type: t, source: s}}}]
  targets:
    - {name: t, type: http, config: {url: "http://127.0.0.1:1/", username: u, password: "${params.pw}"}}
  triggers: [{name: tr, target: t}]
"""


def test_dataflow_refuses_secrets_the_workers_cannot_read():
    sm = "projects/p/secrets/pw/versions/3"
    ok = load_text(DATAFLOW_YAML.replace("written-default", sm), params={"pw": sm}, env={}).integrations[0]
    check_secrets(ok)  # Secret Manager versions only: accepted
    by_value = load_text(DATAFLOW_YAML, params={"pw": VALUE}, env={}).integrations[0]
    with pytest.raises(RunnerError) as e:
        check_secrets(by_value)
    text = str(e.value)
    assert "parameter pw is given by value" in text and "parameter unused has a default value" in text
    assert VALUE not in text and "written-default" not in text and len(text.splitlines()) == 1
    env_and_literal = DATAFLOW_YAML.replace('"${params.pw}"', '"${env.PW_VAR}", token: lit3ral')
    it = load_text(
        env_and_literal.replace("written-default", sm), env={"PW_VAR": "env-pw-value"}
    ).integrations[0]
    with pytest.raises(
        RunnerError, match=r"\$\{env.PW_VAR\} is this machine's environment; .*written in the file"
    ):
        check_secrets(it)


def test_run_on_dataflow_refuses_a_secret_by_value_in_one_line(tmp_path, capsys):
    path = tmp_path / "df.yaml"
    path.write_text(DATAFLOW_YAML)
    status = main(["run", str(path), "--runner", "dataflow", "--param", f"pw={VALUE}", "--", "--project=p"])
    err = capsys.readouterr().err
    assert status == 1 and VALUE not in err
    assert [ln for ln in err.splitlines() if ln.strip() and "warning:" not in ln] == [
        "df: on Dataflow a secret must be a Secret Manager secret version that the workers read "
        "(--param NAME=projects/PROJECT/secrets/SECRET/versions/VERSION): parameter pw is given by value; "
        "parameter unused has a default value"
    ]


# --------------------------------------------------------------------------- every secret-marked field
# tests/unit/test_secret_marks.py: every marked field of every registered component, its config
# found from the declaration, masked in validate, graph, reprs and errors


DEAD_LETTERS_YAML = """\
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {name: dl-leaks}
spec:
  parameters:
    - {name: token, secret: true, required: true}
    - {name: out, required: true}
  sources:
    - {name: s, type: generate, config: {count: 2, event: {type: t, source: s, data: {n: "{n}"}}}}
  transformations:
    - name: fail
      type: python
      config:
        code: |
          def handle(event):
              raise ValueError("refused by ${params.token}; retry at " + "https://svc:" + "url-pw-1@h/x")
  targets:
    - name: search
      type: elasticsearch
      config: {hosts: ["${env.DL_ES_URL}"], index: i, batch_size: 1}
    - {name: dead, type: file, config: {path: "${params.out}", format: jsonl}}
  triggers:
    - {name: steps, target: dead, steps: [fail], delivery: {deadLetter: dead}}
    - {name: index, target: search, delivery: {retries: 0, deadLetter: dead}}
  deadLetter: dead
"""


def test_dead_letters_carry_no_secret_and_no_url_credentials(tmp_path, monkeypatch, capsys):
    """A step's error holding a secret parameter and a URL password, and an Elasticsearch host URL
    from ${env.…} with user:password@ that cannot be reached: the dead letters say why, not what."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: connection refused
    monkeypatch.setenv("DL_ES_URL", f"http://elastic:es-url-pw-2@127.0.0.1:{port}")
    path = tmp_path / "dl.yaml"
    path.write_text(DEAD_LETTERS_YAML)
    out = tmp_path / "dead"
    token = "tok-" + "x9" * 8
    assert (
        main(["run", str(path), "--runner", "direct", "--param", f"token={token}", "--param", f"out={out}"])
        == 0
    )
    captured = capsys.readouterr()
    lines = [json.loads(line) for f in out.rglob("*.jsonl") for line in f.read_text().splitlines()]
    reasons = sorted(e["meshlineerror"] for e in lines)
    assert len(lines) == 4 and {e["meshlineerrorstage"] for e in lines} == {"transform", "deliver"}
    assert any("refused by ***; retry at https://svc:***@h/x" in r for r in reasons), reasons
    assert any("talking to http://127.0.0.1:" in r for r in reasons)  # says where it failed
    text = json.dumps(lines) + captured.out + captured.err
    for secret in (token, "url-pw-1", "es-url-pw-2"):
        assert secret not in text
