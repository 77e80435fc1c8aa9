"""The ``mapping`` transformation (TriggerMesh Bumblebee semantics).

The first tables port the cases of TriggerMesh's own Go tests
(``pkg/flow/adapter/transformation/adapter_test.go`` and ``common/convert/convert_test.go``)
and of its samples and documentation: same inputs, same expected outputs, written here as data.
The rest pins the details read from the Go code and the places where Meshline deliberately
differs (see the module docstring of :mod:`meshline.transforms.mapping`).
"""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshline.config import config_schema, parse_config
from meshline.errors import ConfigError, TransformError
from meshline.events import CloudEvent, from_json_dict
from meshline.transforms.mapping import (
    MappingConfig,
    Operation,
    PathSpec,
    compile_mapping,
    parse_path,
)


def make_event(data: Any = None, **attributes: Any) -> CloudEvent:
    attrs = {"id": "123", "source": "test", "type": "test", "datacontenttype": "application/json"}
    attrs.update(attributes)
    return CloudEvent.create(data=data, **attrs)


def mapping(data: list[dict] | None = None, context: list[dict] | None = None):
    config = parse_config(MappingConfig, {"data": data or [], "context": context or []})
    return compile_mapping(config)


def run(event: CloudEvent, data: list[dict] | None = None, context: list[dict] | None = None) -> CloudEvent:
    return mapping(data, context)(event)


def op(operation: str, *paths: dict) -> dict:
    return {"operation": operation, "paths": list(paths)}


# --------------------------------------------------------------------------- TriggerMesh's Go tests

GO_CASES = [
    (
        "conditional add 1",
        {"name": "John"},
        [
            op("store", {"key": "$name", "value": "name"}, {"key": "$surname", "value": "surname"}),
            op("delete", {"key": ""}),
            op("add", {"key": "id", "value": "$name(.$surname)"}),
        ],
        {"id": "John"},
    ),
    (
        "conditional add 2",
        {"day": "01", "month": "01", "year": "1970"},
        [
            op(
                "store",
                {"key": "$day", "value": "day"},
                {"key": "$month", "value": "month"},
                {"key": "$year", "value": "year"},
            ),
            op("delete", {"key": ""}),
            op("add", {"key": "date", "value": "($day)(/$month)(/$year)/$year"}),
        ],
        {"date": "01/01/1970/1970"},
    ),
    (
        "custom separator",
        {"field.1": "value"},
        [
            op("shift", {"key": "field.1:nested/field.1", "separator": "/"}),
            op("add", {"key": "not.nested", "value": "foo", "separator": ":"}),
        ],
        {"nested": {"field.1": "value"}, "not.nested": "foo"},
    ),
    (
        "add operation",
        {"foo": "bar", "blah": [{"bleh": "huh?"}]},
        [
            op(
                "add",
                {"key": "message", "value": "Hello World!"},
                {"key": "object.message", "value": "hey"},
                {"key": "object.slice[1]", "value": "sup"},
                {"key": "blah[2].foo", "value": "42"},
                {"key": "blah[0].bleh", "value": "no"},
                {"key": "foo", "value": "baz"},
            )
        ],
        {
            "blah": [{"bleh": "no"}, None, {"foo": "42"}],
            "foo": "baz",
            "message": "Hello World!",
            "object": {"message": "hey", "slice": [None, "sup"]},
        },
    ),
    (
        "delete operation",
        {"key1": "value1", "key2": "value2", "key3": "value3", "key4": "value4"},
        [
            op(
                "delete",
                {"key": "key1", "value": ""},
                {"key": "key2", "value": "wrong filter"},
                {"key": "key3", "value": "value3"},
                {"value": "value4"},
            )
        ],
        {"key2": "value2"},
    ),
    ("delete operation, wipe payload", {"key1": "value1"}, [op("delete", {"key": ""})], None),
    (
        "shift operation",
        {"key1": "value1", "object": {"key2": "value2"}},
        [op("shift", {"key": "object.key2:okey"}, {"key": "key1:key2", "value": "wrong filter"})],
        {"key1": "value1", "object": {}, "okey": "value2"},
    ),
    (
        "shift full body",
        [{"key1": "value1"}],
        [op("shift", {"key": ".:body"})],
        {"body": [{"key1": "value1"}]},
    ),
    (
        "store operation",
        {"key1": "value1", "object": {"foo": "bar"}},
        [
            op("store", {"key": "$var1", "value": "key1"}, {"key": "$var2", "value": "object.foo"}),
            op("add", {"key": "key1", "value": "$var2"}, {"key": "object.foo", "value": "$var1"}),
        ],
        {"key1": "bar", "object": {"foo": "value1"}},
    ),
    (
        "store full body",
        [{"key1": "value1"}],
        [
            op("store", {"key": "$body", "value": "."}),
            op("delete", {"key": ""}),
            op("add", {"key": "body", "value": "$body"}),
        ],
        {"body": [{"key1": "value1"}]},
    ),
    (
        "parse operation",
        {
            "key1": "value1",
            "key2": [{"key3": "value3", "strJSON": '{"foo":123,"bar":"value2","baz":["one","two","three"]}'}],
        },
        [op("parse", {"key": "key2[0].strJSON", "value": "json"})],
        {
            "key1": "value1",
            "key2": [
                {"key3": "value3", "strJSON": {"bar": "value2", "baz": ["one", "two", "three"], "foo": 123}}
            ],
        },
    ),
    (
        # TriggerMesh's "Ignore errors" minus its invalid 'jnos' parse (a config error here):
        # operations on keys that do not exist leave the event alone.
        "missing keys are no-ops",
        {"key1": "value1", "object": {"foo": "bar"}},
        [
            op("parse", {"key": "Non-existing-key", "value": "json"}),
            op("shift", {"key": "Non-existing-key:key1"}, {"key": "object.non-existing-key:key2"}),
            op("delete", {"key": "Non-existing-key"}),
            op("store", {"key": "$var1", "value": "Non-existing-key"}),
        ],
        {"key1": "value1", "object": {"foo": "bar"}},
    ),
    # common/convert/convert_test.go, TestMergeJSONWithMap, as "add" operations
    (
        "merge: nested key",
        {"old": "value"},
        [op("add", {"key": "foo", "value": "bar"})],
        {"old": "value", "foo": "bar"},
    ),
    (
        "merge: array in object",
        {"old": "value"},
        [op("add", {"key": "foo.bar[1]", "value": "baz"})],
        {"old": "value", "foo": {"bar": [None, "baz"]}},
    ),
    (
        "merge: root array replaces the object",
        {"old": "value"},
        [op("add", {"key": "[1].foo", "value": "bar"})],
        [None, {"foo": "bar"}],
    ),
]


@pytest.mark.parametrize(("name", "data", "ops", "expected"), GO_CASES, ids=[c[0] for c in GO_CASES])
def test_triggermesh_data_cases(name: str, data: Any, ops: list[dict], expected: Any) -> None:
    out = run(make_event(data), data=ops)
    assert out.data == expected
    assert out.attributes == make_event(data).attributes


def test_triggermesh_transform_extensions() -> None:
    event = make_event(ext1="value1", ext2=2)
    out = run(
        event,
        context=[
            op("add", {"key": "Extensions.ext3", "value": "value3"}),
            op("delete", {"key": "Extensions.ext1"}),
        ],
    )
    assert {k: v for k, v in out.attributes.items() if k.startswith("ext")} == {"ext2": 2, "ext3": "value3"}
    assert out.id == "123" and out.type == "test" and out.source == "test"


def test_triggermesh_concurrent_store_variables_are_per_event() -> None:
    fn = mapping(
        context=[op("store", {"key": "$id", "value": "id"})],
        data=[op("add", {"key": "id", "value": "$id"})],
    )
    outs = [fn(make_event("{}", id=str(i), type="mock-event", source="concurrency-test")) for i in range(10)]
    assert [o.data for o in outs] == [{"id": str(i)} for i in range(10)]


def test_triggermesh_sample_pingsource() -> None:
    """config/samples/bumblebee/simple-event: variables cross from data to context and back."""
    data = {
        "First Name": "Barbara",
        "Last Name": "Singh",
        "Date of birth": {"year": 1955, "month": 1, "day": 23},
        "Married": True,
        "Children": [{"Name": "Martin", "Year of birth": 1980}, {"Name": "Margaret", "Year of birth": 1983}],
        "Mobile phone": None,
    }
    event = make_event(data, id="abc", type="dev.knative.sources.ping", time="2024-05-01T10:00:00Z")
    out = run(
        event,
        context=[
            op("store", {"key": "$time", "value": "time"}, {"key": "$id", "value": "id"}),
            op(
                "add",
                {"key": "id", "value": "$person-$id"},
                {"key": "type", "value": "io.triggermesh.transformation.pingsource"},
            ),
        ],
        data=[
            op("store", {"key": "$person", "value": "First Name"}),
            op("add", {"key": "event.ID", "value": "$id"}, {"key": "event.time", "value": "$time"}),
            op(
                "shift",
                {"key": "Date of birth:birthday"},
                {"key": "First Name:firstname"},
                {"key": "Last Name:lastname"},
            ),
            op("delete", {"key": "Mobile phone"}, {"key": "Children[1].Year of birth"}, {"value": "Martin"}),
        ],
    )
    assert out.id == "Barbara-abc"
    assert out.type == "io.triggermesh.transformation.pingsource"
    assert out.data == {
        "Married": True,
        "Children": [{"Year of birth": 1980}, {"Name": "Margaret"}],
        "event": {"ID": "abc", "time": "2024-05-01T10:00:00Z"},
        "birthday": {"year": 1955, "month": 1, "day": 23},
        "firstname": "Barbara",
        "lastname": "Singh",
    }


def test_triggermesh_sample_parse_json() -> None:
    """config/samples/bumblebee/parse-json: parse a JSON string, store from it, rebuild the payload."""
    inner = {
        "control": "Block Container Exec",
        "reason": "Unauthorized container exec",
        "vm_location": "westeurope",
    }
    data = {"count": 1, "result": [{"id": 442, "time": 1627587060, "data": orjson.dumps(inner).decode()}]}
    out = run(
        make_event(data),
        data=[
            op("parse", {"key": "result[0].data", "value": "JSON"}),
            op(
                "store",
                {"key": "$control", "value": "result[0].data.control"},
                {"key": "$id", "value": "result[0].id"},
                {"key": "$reason", "value": "result[0].data.reason"},
                {"key": "$time", "value": "result[0].time"},
                {"key": "$region", "value": "result[0].data.vm_location"},
            ),
            op("delete", {"key": ""}),
            op(
                "add",
                {"key": "dictionary.version", "value": "0.0.1"},
                {"key": "event.name", "value": "$control"},
                {"key": "event.guid", "value": "$id"},
                {"key": "event.url", "value": ""},
                {"key": "event.shortDescription", "value": "$reason"},
                {"key": "event.time", "value": "$time"},
                {"key": "resource.region", "value": "$region"},
            ),
        ],
    )
    assert out.data == {
        "dictionary": {"version": "0.0.1"},
        "event": {
            "name": "Block Container Exec",
            "guid": 442,  # a value that is exactly one variable keeps its JSON type
            "url": "",
            "shortDescription": "Unauthorized container exec",
            "time": 1627587060,
        },
        "resource": {"region": "westeurope"},
    }


def test_triggermesh_sample_multi_target() -> None:
    """config/samples/bumblebee/multi-target: a template mixing text and variables."""
    data = {
        "action": "opened",
        "repository": {"name": "foo"},
        "issue": {"title": "Bug", "user": {"login": "ann"}},
    }
    out = run(
        make_event(data, type="dev.knative.source.github.issues"),
        context=[
            op("store", {"key": "$ceType", "value": "type"}),
            op("add", {"key": "type", "value": "io.triggermesh.transformation.github"}),
        ],
        data=[
            op(
                "store",
                {"key": "$action", "value": "action"},
                {"key": "$repository", "value": "repository.name"},
                {"key": "$title", "value": "issue.title"},
                {"key": "$author", "value": "issue.user.login"},
            ),
            op("delete", {"key": ""}),
            op(
                "add",
                {"key": "type", "value": "$ceType"},
                {"key": "object", "value": "$author"},
                {"key": "subject", "value": "$repository"},
                {"key": "verb", "value": '$action issue "$title"'},
            ),
        ],
    )
    assert out.type == "io.triggermesh.transformation.github"
    assert out.data == {
        "type": "dev.knative.source.github.issues",
        "object": "ann",
        "subject": "foo",
        "verb": 'opened issue "Bug"',
    }


def test_docs_examples_delete_and_add_arrays() -> None:
    data = {"foo": 1, "array": [{"foo": 1}, {"foo": 2, "bar": 3}], "commits": [{"a": 1}]}
    out = run(
        make_event(data),
        data=[
            op("delete", {"key": "foo"}, {"key": "array[1].foo"}),
            op(
                "add",
                {"key": "newObject.array[2]", "value": "true"},
                {"key": "commits[1].newKey", "value": "1337"},
            ),
        ],
    )
    assert out.data == {
        "array": [{"foo": 1}, {"bar": 3}],
        "commits": [{"a": 1}, {"newKey": "1337"}],
        "newObject": {"array": [None, None, "true"]},
    }


# --------------------------------------------------------------------------- paths


@pytest.mark.parametrize(
    ("key", "separator", "path"),
    [
        ("a.b[0].c", "", ("a", "b", 0, "c")),
        ("[1].foo", "", (1, "foo")),
        ("foo.[0].bar", "", ("foo", 0, "bar")),
        ("", "", ()),
        (".", "", ()),
        ("a..b.", "", ("a", "b")),
        ("field.1", "/", ("field.1",)),
        ("nested/field.1", "/", ("nested", "field.1")),
        ("a[1][2]", "", ("a", 1, 2)),
        ("a[x]", "", ("a[x]",)),
        ("Date of birth", "", ("Date of birth",)),
    ],
)
def test_parse_path(key: str, separator: str, path: tuple) -> None:
    assert parse_path(key, separator) == path


def test_parse_path_rejects_negative_and_huge_indexes() -> None:
    with pytest.raises(ValueError, match="negative"):
        parse_path("a[-1]")
    with pytest.raises(ValueError, match="larger"):
        parse_path("a[100001]")


# --------------------------------------------------------------------------- order and variables


def test_store_and_parse_run_before_other_operations() -> None:
    out = run(
        make_event({"a": "1", "s": '{"x": 5}'}),
        data=[
            op("delete", {"key": "a"}),
            op("add", {"key": "copy", "value": "$a"}, {"key": "x", "value": "$x"}),
            op("store", {"key": "$a", "value": "a"}),
            op("parse", {"key": "s", "value": "json"}),
            op("store", {"key": "$x", "value": "s.x"}),
        ],
    )
    assert out.data == {"s": {"x": 5}, "copy": "1", "x": 5}


def test_init_steps_keep_their_written_order() -> None:
    # store before parse reads the unparsed string: s.x does not exist yet
    out = run(
        make_event({"s": '{"x": 5}'}),
        data=[
            op("store", {"key": "$x", "value": "s.x"}),
            op("parse", {"key": "s", "value": "json"}),
            op("add", {"key": "x", "value": "$x"}),
        ],
    )
    assert out.data == {"s": {"x": 5}, "x": "$x"}


def test_context_runs_before_data_and_variables_cross() -> None:
    out = run(
        make_event({"user": "ann"}, type="old.type"),
        context=[
            op("store", {"key": "$type", "value": "type"}),
            op("add", {"key": "type", "value": "new.type"}, {"key": "subject", "value": "user-$user"}),
        ],
        data=[
            op("store", {"key": "$user", "value": "user"}),
            op("add", {"key": "was", "value": "$type"}),
        ],
    )
    assert out.type == "new.type"
    assert out.get("subject") == "user-ann"
    assert out.data == {"user": "ann", "was": "old.type"}


def test_store_of_the_whole_context() -> None:
    out = run(
        make_event(None, ext1="x"),
        context=[op("store", {"key": "$ctx", "value": "."})],
        data=[op("add", {"key": "ctx", "value": "$ctx"})],
    )
    assert out.data == {
        "ctx": {
            "specversion": "1.0",
            "id": "123",
            "source": "test",
            "type": "test",
            "datacontenttype": "application/json",
            "Extensions": {"ext1": "x"},
        }
    }


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("$obj", {"k": [1, 2]}),  # exactly one variable: its JSON value
        ("$num", 42),
        ("$unset", "$unset"),  # unset variables stay literal
        ("$never-stored", "$never-stored"),
        ("n=$num", "n=42"),
        ("o=$obj", 'o={"k":[1,2]}'),  # non-strings are inserted as JSON text
        ("b=$flag", "b=true"),
        ("$name($unset)!", "ann!"),  # a group with an unset variable disappears
        ("$name( $name2)", "ann bob"),  # a group whose variables are set loses its brackets
        ("($name $unset)", ""),
        ("(no variables)", "(no variables)"),
        ("\\($name\\)", "\\(ann\\)"),  # escaped brackets are text
        ("($name) and (x)", "ann and (x)"),
        ("$name2$name", "bobann"),  # longest name first: $name2 is not $name + "2"
        ("$inject", "$name"),  # inserted values are not expanded again
        ("", ""),
    ],
)
def test_add_templates(template: str, expected: Any) -> None:
    data = {"obj": {"k": [1, 2]}, "num": 42, "flag": True, "name": "ann", "name2": "bob", "inject": "$name"}
    out = run(
        make_event(data),
        data=[
            op(
                "store",
                *({"key": f"${k}", "value": k} for k in data),
                {"key": "$unset", "value": "missing"},
            ),
            op("delete", {"key": ""}),
            op("add", {"key": "v", "value": template}),
        ],
    )
    assert out.data == {"v": expected}


def test_add_typed_values_and_default_empty_string() -> None:
    out = run(
        make_event({}),
        data=[
            op(
                "add",
                {"key": "n", "value": 3},
                {"key": "b", "value": False},
                {"key": "o", "value": {"x": [1]}},
                {"key": "empty"},
            )
        ],
    )
    assert out.data == {"n": 3, "b": False, "o": {"x": [1]}, "empty": ""}


# --------------------------------------------------------------------------- add (merge) semantics


@pytest.mark.parametrize(
    ("data", "key", "value", "expected"),
    [
        ({"o": {"a": 1}}, "o", {"b": 2}, {"o": {"a": 1, "b": 2}}),  # objects merge
        ({"l": [1, 2, 3]}, "l", [9, None], {"l": [9, 2, 3]}),  # arrays merge; null keeps
        ({"x": 1}, "x", None, {"x": ""}),  # no value is the empty string
        ({"l": [1]}, "l.k", "v", {"l": [1]}),  # a member cannot be added to an array
        ({"o": {"a": 1}}, "o[1]", "v", {"o": [None, "v"]}),  # an array replaces an object
        ({"s": "str"}, "s.k", "v", {"s": {"k": "v"}}),  # an object replaces a scalar
        ({"a": 1}, "", "root", "root"),  # the empty key is the whole document
        ({"a": 1}, ".", {"b": 2}, {"a": 1, "b": 2}),
        (None, "a.b", "v", {"a": {"b": "v"}}),  # absent data is null
        ([1, 2], "[3]", "v", [1, 2, None, "v"]),
    ],
)
def test_add_merges(data: Any, key: str, value: Any, expected: Any) -> None:
    path: dict[str, Any] = {"key": key}
    if value is not None:
        path["value"] = value
    assert run(make_event(data), data=[op("add", path)]).data == expected


# --------------------------------------------------------------------------- delete


@pytest.mark.parametrize(
    ("data", "path", "expected"),
    [
        ({"l": [1, 2, 3]}, {"key": "l[1]"}, {"l": [1, None, 3]}),  # array elements become null
        ({"a": 42, "b": "42", "c": [42, 1]}, {"value": "42"}, {"c": [None, 1]}),  # compared as text
        ({"a": 42}, {"value": 42}, {}),
        ({"a": 1.5, "b": 100.0}, {"value": "100"}, {"a": 1.5}),
        ({"a": True, "b": "true", "c": 1}, {"value": True}, {"c": 1}),
        ({"a": {"b": "x", "c": {"d": "x"}}}, {"value": "x"}, {"a": {"c": {}}}),  # recursive
        ({"a": {"b": "x"}}, {"key": "a", "value": "x"}, {"a": {"b": "x"}}),  # objects never match
        ({"a": {"b": "x"}}, {"key": "a.b", "value": "x"}, {"a": {}}),
        ({"a.b": 1, "a": {"b": 2}}, {"key": "a.b"}, {"a.b": 1, "a": {}}),
        ({"a.b": 1}, {"key": "a.b", "separator": "/"}, {}),  # custom separators work for delete
        ("x", {"value": "x"}, None),
        ({"a": 1}, {"key": "."}, None),
        ([{"a": 1}, {"a": 2}], {"key": "[1].a"}, [{"a": 1}, {}]),
        ({"a": None}, {"key": "a"}, {}),
    ],
)
def test_delete(data: Any, path: dict, expected: Any) -> None:
    assert run(make_event(data), data=[op("delete", path)]).data == expected


def test_delete_value_from_variable() -> None:
    out = run(
        make_event({"secret": "s3", "copy": "s3", "other": "x"}),
        data=[op("store", {"key": "$s", "value": "secret"}), op("delete", {"value": "$s"})],
    )
    assert out.data == {"other": "x"}
    fn = mapping(data=[op("store", {"key": "$s", "value": "secret"}), op("delete", {"value": "$s"})])
    # resolved for each event, not once (TriggerMesh remembers the first event's value)
    assert fn(make_event({"secret": "a", "x": "a", "y": "b"})).data == {"y": "b"}
    assert fn(make_event({"secret": "b", "x": "a", "y": "b"})).data == {"x": "a"}


# --------------------------------------------------------------------------- shift


@pytest.mark.parametrize(
    ("data", "path", "expected"),
    [
        ({"l": [1, 2, 3]}, {"key": "l[1]:x"}, {"l": [1, 3], "x": 2}),  # the element leaves the array
        ({"a": {"x": 1}, "b": {"y": 2}}, {"key": "a:b"}, {"b": {"y": 2, "x": 1}}),  # merged at NEW
        ({"a": None}, {"key": "a:b"}, {"a": None}),  # null is not moved
        ({"a": 42}, {"key": "a:b", "value": "42"}, {"a": 42}),  # condition: same JSON type
        ({"a": 42}, {"key": "a:b", "value": 42}, {"b": 42}),
        ({"a": True}, {"key": "a:b", "value": 1}, {"a": True}),
        ({"a": {"b": 1}}, {"key": "a:"}, {"b": 1}),  # to the root: merged into it
        ({"w": {"x": 1}, "y": 2}, {"key": "w:."}, {"y": 2, "x": 1}),
        ([{"a": 1}, {"a": 2}], {"key": "[0].a:[1].b"}, [{}, {"a": 2, "b": 1}]),
        ({"a": 1, "l": []}, {"key": "a:l.x"}, {"l": []}),  # a member cannot go into an array
        ({"a": "v"}, {"key": "a:x[2]"}, {"x": [None, None, "v"]}),
    ],
)
def test_shift(data: Any, path: dict, expected: Any) -> None:
    assert run(make_event(data), data=[op("shift", path)]).data == expected


def test_shift_condition_from_variable() -> None:
    ops = [
        op("store", {"key": "$want", "value": "want"}),
        op("shift", {"key": "a:moved", "value": "$want"}),
    ]
    assert run(make_event({"want": 7, "a": 7}), data=ops).data == {"want": 7, "moved": 7}
    assert run(make_event({"want": 8, "a": 7}), data=ops).data == {"want": 8, "a": 7}
    # an unset variable compares as its literal name
    assert run(make_event({"a": "$want"}), data=ops).data == {"moved": "$want"}


# --------------------------------------------------------------------------- parse


def test_parse_values() -> None:
    data = {"o": '{"a": 1}', "l": "[1, 2]", "n": "3", "nul": "null", "missing_is_fine": None}
    out = run(
        make_event(data),
        data=[op("parse", *({"key": k, "value": "json"} for k in data), {"key": "absent", "value": "json"})],
    )
    # "null" merges as nothing: the string stays (MergeJSONWithMap never writes null)
    assert out.data == {"o": {"a": 1}, "l": [1, 2], "n": 3, "nul": "null", "missing_is_fine": None}


def test_parse_root_string() -> None:
    assert run(make_event('{"a": 1}'), data=[op("parse", {"key": "", "value": "json"})]).data == {"a": 1}


@pytest.mark.parametrize(("value", "message"), [("{bad", "not valid JSON"), ({"a": 1}, "expected a string")])
def test_parse_errors_name_the_key(value: Any, message: str) -> None:
    fn = mapping(data=[op("add", {"key": "x", "value": "1"}), op("parse", {"key": "p.q", "value": "json"})])
    with pytest.raises(TransformError, match=message) as e:
        fn(make_event({"p": {"q": value}}))
    assert "data[1].paths[0]" in str(e.value) and "'p.q'" in str(e.value) and "parse" in str(e.value)


# --------------------------------------------------------------------------- context


def test_context_attributes_and_extensions() -> None:
    event = make_event({"a": 1}, subject="s1", ext1="v1", flag=True, count=3)
    out = run(
        event,
        context=[
            op("store", {"key": "$count", "value": "Extensions.count"}),
            op(
                "add",
                {"key": "type", "value": "ce.after"},
                {"key": "extensions.originaltype", "value": "test"},  # lowercase alias (TriggerMesh docs)
                {"key": "Extensions.copy", "value": "$count"},
                {"key": "Extensions.num", "value": 5},
            ),
            op("shift", {"key": "subject:Extensions.oldsubject"}),
            op("delete", {"key": "Extensions.flag"}, {"key": "Extensions.ext1", "value": "other"}),
        ],
    )
    assert out.attributes == {
        "specversion": "1.0",
        "id": "123",
        "source": "test",
        "type": "ce.after",
        "datacontenttype": "application/json",
        "ext1": "v1",
        "count": 3,
        "originaltype": "test",
        "copy": 3,
        "num": 5,
        "oldsubject": "s1",
    }
    assert out.data == {"a": 1}


def test_context_delete_by_value_and_all_extensions() -> None:
    event = make_event(None, subject="drop", e1="drop", e2="keep")
    out = run(event, context=[op("delete", {"value": "drop"})])
    assert "subject" not in out.attributes and "e1" not in out.attributes and out.get("e2") == "keep"
    out = run(event, context=[op("delete", {"key": "Extensions"})])
    assert "e1" not in out.attributes and "e2" not in out.attributes and out.get("subject") == "drop"


@pytest.mark.parametrize(
    ("ops", "message"),
    [
        ([op("delete", {"key": "id"})], "'id' is missing"),
        ([op("delete", {"value": "123"})], "'id' is missing"),
        ([op("add", {"key": "type"})], "'type' is missing"),  # no value is the empty string
        ([op("add", {"key": "specversion", "value": "0.3"})], "specversion"),
        (
            [op("shift", {"key": "Extensions.n:subject"}), op("add", {"key": "time", "value": "$o"})],
            "'time' must be a string",
        ),
        ([op("add", {"key": "Extensions.o", "value": "$o"})], "'o' must be a string, integer or boolean"),
        ([op("add", {"key": "Extensions", "value": "x"})], "Extensions must be an object"),
    ],
)
def test_context_must_stay_valid(ops: list[dict], message: str) -> None:
    fn = mapping(context=ops, data=[op("store", {"key": "$o", "value": "o"})])
    with pytest.raises(TransformError, match=message):
        fn(make_event({"o": {"x": 1}}, n=1))


def test_numbers_written_to_attributes_become_text() -> None:
    out = run(
        make_event({"order": 1234567, "ok": True}),
        data=[op("store", {"key": "$order", "value": "order"}, {"key": "$ok", "value": "ok"})],
        context=[op("add", {"key": "subject", "value": "$order"}, {"key": "Extensions.ok", "value": "$ok"})],
    )
    assert out.get("subject") == "1234567"  # not 1.234567e+06 as Go would print it
    assert out.get("ok") is True  # extensions may be integers or booleans


@pytest.mark.parametrize(
    ("ops", "message"),
    [
        ([op("add", {"key": "foo", "value": "x"})], "'foo' is not a context attribute"),
        ([op("add", {"key": "Extensions.Bad_Name", "value": "x"})], "invalid extension name"),
        ([op("add", {"key": "Extensions.type", "value": "x"})], "reserved"),
        ([op("add", {"key": "Extensions.a.b", "value": "x"})], "Extensions.NAME"),
        ([op("add", {"key": "type", "value": 3})], "must be a string"),
        ([op("delete", {"key": ""})], "every attribute"),
        ([op("store", {"key": "$x", "value": "tpye"})], "'tpye' is not a context attribute"),
        ([op("shift", {"key": "subject:data.x"})], "'data.x' is not a context attribute"),
    ],
)
def test_context_config_errors(ops: list[dict], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as e:
        mapping(context=ops)
    assert "context[0].paths[0]" in str(e.value)


# --------------------------------------------------------------------------- data forms


def test_json_bytes_are_parsed_and_content_type_fixed() -> None:
    event = make_event(b'{"a": 1}', datacontenttype="application/octet-stream")
    out = run(event, data=[op("add", {"key": "b", "value": "2"})])
    assert out.data == {"a": 1, "b": "2"}
    assert out.get("datacontenttype") == "application/json"
    assert event.data == b'{"a": 1}'


def test_json_content_type_with_parameters_is_kept() -> None:
    out = run(
        make_event({}, datacontenttype="application/json; charset=utf-8"), data=[op("add", {"key": "b"})]
    )
    assert out.get("datacontenttype") == "application/json; charset=utf-8"


def test_store_only_keeps_data_as_it_was() -> None:
    event = make_event(b'{"a": 1}', datacontenttype="application/octet-stream")
    out = run(
        event,
        data=[op("store", {"key": "$a", "value": "a"})],
        context=[op("add", {"key": "subject", "value": "$a"})],
    )
    assert out.data == b'{"a": 1}' and out.get("subject") == "1"
    assert out.get("datacontenttype") == "application/octet-stream"


@pytest.mark.parametrize(
    ("data", "ct", "message"),
    [(b"\xff\x00binary", "application/octet-stream", "binary"), ("plain text", "text/plain", "text")],
)
def test_non_json_data_is_an_error(data: Any, ct: str, message: str) -> None:
    with pytest.raises(TransformError, match=message):
        run(make_event(data, datacontenttype=ct), data=[op("add", {"key": "a"})])
    # without data operations the data is not looked at
    out = run(make_event(data, datacontenttype=ct), context=[op("add", {"key": "subject", "value": "x"})])
    assert out.data == data


def test_text_that_is_json_is_parsed() -> None:
    out = run(
        make_event('{"a": 1}', datacontenttype="text/plain"), data=[op("add", {"key": "b", "value": "x"})]
    )
    assert out.data == {"a": 1, "b": "x"} and out.get("datacontenttype") == "application/json"


def test_big_integers_keep_their_precision() -> None:
    big = 2**63 - 1
    out = run(
        make_event({"n": big}), data=[op("shift", {"key": "n:m"}), op("add", {"key": "x", "value": "y"})]
    )
    assert out.data == {"m": big, "x": "y"}


# --------------------------------------------------------------------------- immutability


def test_input_event_is_not_modified() -> None:
    data = {"a": {"b": [1, {"c": "x"}], "d": "x"}, "s": '{"p": 1}', "l": [1, 2, 3], "o": {"k": 1}}
    event = make_event(data, ext1="e")
    before_data = copy.deepcopy(data)
    before_attrs = dict(event.attributes)
    fn = mapping(
        context=[
            op("add", {"key": "type", "value": "t2"}, {"key": "Extensions.ext2", "value": "x"}),
            op("delete", {"key": "Extensions.ext1"}),
        ],
        data=[
            op("store", {"key": "$o", "value": "o"}),
            op("parse", {"key": "s", "value": "json"}),
            op(
                "add",
                {"key": "a.b[1].c", "value": "y"},
                {"key": "l[5]", "value": "z"},
                {"key": "o", "value": "$o"},
            ),
            op("add", {"key": "o.extra", "value": "1"}),
            op("delete", {"key": "a.b[0]"}, {"value": "x"}),
            op("shift", {"key": "l[0]:moved"}, {"key": "a:b"}),
        ],
    )
    out1 = fn(event)
    out2 = fn(event)
    assert out1 == out2
    assert event.data == before_data
    assert event.attributes == before_attrs
    assert out1.data["o"] == {"k": 1, "extra": "1"} and data["o"] == {"k": 1}


def test_same_add_object_value_is_not_shared_between_events() -> None:
    fn = mapping(data=[op("add", {"key": "o", "value": {"list": [1]}})])
    a, b = fn(make_event({})), fn(make_event({}))
    assert a.data["o"] is not b.data["o"]


# --------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("ops", "message"),
    [
        ([op("shift", {"key": "a.b"})], "exactly one ':'"),
        ([op("shift", {"key": "a:b:c"})], "exactly one ':'"),
        ([op("store", {"key": "$x"})], "needs a value"),
        ([op("store", {"value": "a"})], "needs a key"),
        ([op("parse", {"key": "bad-value-type", "value": "jnos"})], "must be 'json'"),  # Go "Ignore errors"
        ([op("add", {"key": "a[-1]"})], "negative"),
        ([op("delete", {"key": "a", "value": {"x": 1}})], "must be a string, number or boolean"),
        ([{"operation": "rename", "paths": [{"key": "a"}]}], "expected one of"),
        ([{"operation": "add", "paths": []}], "at least one path"),
        ([{"operation": "add", "paths": [{"kye": "a"}]}], "unknown key"),
    ],
)
def test_config_errors(ops: list[dict], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as e:
        mapping(data=ops)
    assert "data[0]" in str(e.value)


def test_direct_construction_validates() -> None:
    with pytest.raises(ValueError, match="exactly one ':'"):
        Operation(operation="shift", paths=[PathSpec(key="nocolon")])
    with pytest.raises(ValueError, match="unknown operation"):
        Operation(operation="merge", paths=[PathSpec(key="a")])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="context"):
        MappingConfig(context=[Operation(operation="add", paths=[PathSpec(key="nope")])])
    assert compile_mapping(MappingConfig())(make_event({"a": 1})) == make_event({"a": 1})


def test_schema_describes_every_field() -> None:
    schema = config_schema(MappingConfig)
    assert set(schema["properties"]) == {"context", "data", "timeout"}
    op_schema = schema["properties"]["data"]["items"]
    assert op_schema["properties"]["operation"]["enum"] == ["add", "delete", "shift", "store", "parse"]
    for props in (
        schema["properties"],
        op_schema["properties"],
        op_schema["properties"]["paths"]["items"]["properties"],
    ):
        assert all(p.get("description") for p in props.values())


# --------------------------------------------------------------------------- property test

_SEGMENTS = ["a", "b", "c", "[0]", "a[1]", "b[0]", ""]
_DATA_PATHS = st.lists(st.sampled_from(_SEGMENTS), max_size=3).map(".".join)
_CONTEXT_PATHS = st.sampled_from(
    ["type", "subject", "id", "time", "Extensions.e1", "Extensions.e2", "Extensions"]
)
_TEXT = st.sampled_from(['{"a": 1}', '[1, {"b": 2}]', '"s"', "null", "x", "$x", "42", ""])
_SCALARS = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | _TEXT
_JSON = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(["a", "b", "c", ""]), inner, max_size=4)
    ),
    max_leaves=20,
)
_TEMPLATES = st.sampled_from(["$x", "($x)-$y", "v", "$y", "a($z)b"]) | st.integers() | st.booleans()
_CONDITIONS = st.none() | st.sampled_from(["$x", "x", "42", "", "true"]) | st.integers(-2, 2) | st.booleans()


def _ops(paths: st.SearchStrategy[str], templates: st.SearchStrategy[Any]) -> st.SearchStrategy[dict]:
    path_specs = {
        "add": st.fixed_dictionaries({"key": paths, "value": templates}),
        "delete": st.fixed_dictionaries({"key": paths | st.just(""), "value": _CONDITIONS}),
        "shift": st.fixed_dictionaries({"key": st.tuples(paths, paths).map(":".join), "value": _CONDITIONS}),
        "store": st.fixed_dictionaries(
            {"key": st.sampled_from(["$x", "$y", "$z"]), "value": paths.map(lambda p: p or ".")}
        ),
        "parse": st.fixed_dictionaries({"key": paths, "value": st.just("json")}),
    }
    return st.sampled_from(sorted(path_specs)).flatmap(
        lambda name: st.lists(path_specs[name], min_size=1, max_size=3).map(lambda ps: op(name, *ps))
    )


def _build(context: list[dict], data: list[dict]):
    try:
        return mapping(data, context)
    except ConfigError:
        return None


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.one_of(_JSON, _JSON, _JSON, st.sampled_from([b'{"a": {"b": [1]}}', b"\xffnot json", b"[1, 2]"])),
    context_ops=st.lists(_ops(_CONTEXT_PATHS, st.sampled_from(["$x", "t-$y", "v", "($z)"])), max_size=3),
    data_ops=st.lists(_ops(_DATA_PATHS, _TEMPLATES), max_size=5),
)
def test_random_operations_raise_only_transform_errors(
    data: Any, context_ops: list[dict], data_ops: list[dict]
) -> None:
    fn = _build(context_ops, data_ops)
    if fn is None:
        return
    event = make_event(data, e1="one", e2=2)
    snapshot = copy.deepcopy(event.data), dict(event.attributes)
    try:
        out = fn(event)
    except TransformError:
        pass
    else:
        from_json_dict(out.to_dict())  # the result is a valid event
        if out.data is not None and not isinstance(out.data, bytes):
            orjson.loads(orjson.dumps(out.data, option=orjson.OPT_PASSTHROUGH_SUBCLASS))
    assert (event.data, event.attributes) == snapshot


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.one_of(_JSON, _JSON, st.sampled_from([b'{"a": {"b": [1]}}', b"[1, 2]"])),
    context_ops=st.lists(_ops(_CONTEXT_PATHS, st.sampled_from(["$x", "t-$y", "v", "($z)"])), max_size=3),
    data_ops=st.lists(_ops(_DATA_PATHS, _TEMPLATES), max_size=6),
)
def test_changing_the_runs_own_copy_in_place_gives_what_copies_give(
    data: Any, context_ops: list[dict], data_ops: list[dict]
) -> None:
    """Operations after the first change the top-level object that run copied in place: the same
    result as copying it at every operation (and the input untouched, as above)."""
    import meshline.transforms.mapping as mapping_module

    fn = _build(context_ops, data_ops)
    if fn is None:
        return

    def outcome() -> Any:
        try:
            out = fn(make_event(data, e1="one", e2=2))
        except TransformError as e:
            return ("error", str(e))
        return ("ok", out.to_dict())

    owned = outcome()
    keep = mapping_module._own
    mapping_module._own = lambda node, own: dict(node) if isinstance(node, dict) else {}  # type: ignore[assignment]
    try:
        copied = outcome()
    finally:
        mapping_module._own = keep
    assert owned == copied
