"""``meshline test --update`` rewrites only the text of the ``expect`` lists it is given."""

from __future__ import annotations

import pytest
import yaml

from meshline.spec.rewrite import ExpectUpdate, RewriteError, flow, rewrite_expectations

HEAD = """\
# orders: a comment the rewrite must keep
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {name: orders}   # trailing comment
spec:
  tests:
    - name: first
      inputs: {in: [{type: t, source: s, id: "1"}]}
      expect:
        out:
          - {id: "1", data: {total: 999}}   # stale
          # a comment between items goes with the list
          - {id: "2"}
        rejects: []     # nothing fails
    - name: second
      inputs: {in: []}
      expect: {out: [], rejects: [{id: "9"}]}
"""


def _expect(text: str, case: int, target: str, name: str = "orders"):
    for doc in yaml.safe_load_all(text):
        if doc and doc["metadata"]["name"] == name:
            return doc["spec"]["tests"][case]["expect"][target]
    raise AssertionError(name)


def _outside(text: str, start: str, end: str) -> tuple[str, str]:
    return text[: text.index(start)], text[text.index(end) :]


def test_a_block_list_is_rewritten_and_nothing_else_changes():
    new = [{"id": "1", "data": {"total": 150.5}}]
    out = rewrite_expectations(HEAD, [ExpectUpdate("orders", 0, "out", new)])
    assert _expect(out, 0, "out") == new
    # everything before the list and from the next key on is byte-identical
    before, after = _outside(HEAD, '\n          - {id: "1"', "\n        rejects: []")
    assert out.startswith(before) and out.endswith(after)
    assert out.count("\n") == HEAD.count("\n") - 2
    assert '- {id: "1", data: {total: 150.5}}' in out


def test_an_empty_flow_list_becomes_a_block_list_keeping_its_comment():
    new = [{"id": "3", "meshlineerrorstage": "filter"}, {"id": "4", "data": "x: y"}]
    out = rewrite_expectations(HEAD, [ExpectUpdate("orders", 0, "rejects", new)])
    assert _expect(out, 0, "rejects") == new
    block = [
        "        rejects:",
        '          - {id: "3", meshlineerrorstage: filter}',
        '          - {id: "4", data: "x: y"}     # nothing fails',
    ]
    assert "\n".join(block) + "\n" in out
    assert _expect(out, 0, "out") == _expect(HEAD, 0, "out")


def test_inside_a_flow_mapping_the_list_stays_flow():
    out = rewrite_expectations(HEAD, [ExpectUpdate("orders", 1, "rejects", [{"id": "9", "type": "t"}])])
    assert 'expect: {out: [], rejects: [{id: "9", type: t}]}\n' in out
    out = rewrite_expectations(HEAD, [ExpectUpdate("orders", 1, "out", [{"id": "1"}])])
    assert _expect(out, 1, "out") == [{"id": "1"}]


def test_several_updates_and_documents_and_crlf():
    text = HEAD + "---\n" + HEAD.replace("name: orders", "name: other")
    text = text.replace("\n", "\r\n")
    updates = [
        ExpectUpdate("other", 0, "out", []),
        ExpectUpdate("orders", 0, "rejects", [{"id": "5"}]),
        ExpectUpdate("orders", 0, "out", [{"id": "1"}]),
    ]
    out = rewrite_expectations(text, updates)
    assert _expect(out, 0, "out", "other") == []
    assert _expect(out, 0, "rejects") == [{"id": "5"}]
    assert _expect(out, 0, "out") == [{"id": "1"}]
    assert "\n" not in out.replace("\r\n", "")  # still CRLF only


def test_long_events_wrap_and_read_back():
    event = {"id": "1", "type": "com.example.order.created", "data": {"k" * 30: "v" * 40, "n": [1, 2, 3]}}
    out = rewrite_expectations(HEAD, [ExpectUpdate("orders", 0, "out", [event, event])])
    assert _expect(out, 0, "out") == [event, event]
    assert max(len(line) for line in out.splitlines()) <= 110


def test_values_that_need_quotes_read_back_as_written():
    values = [
        "yes",
        "null",
        "1",
        "2024-01-01",
        "a: b",
        "#x",
        "-",
        " lead",
        "émile",
        "line\nbreak",
        "",
        1e20,
        0.5,
    ]
    for v in values:
        assert yaml.safe_load(flow({"v": v}))["v"] == v, v
    out = rewrite_expectations(HEAD, [ExpectUpdate("orders", 0, "out", [{"data": values}])])
    assert _expect(out, 0, "out") == [{"data": values}]


def test_what_cannot_be_rewritten_is_refused():
    with pytest.raises(RewriteError, match="not in the file"):
        rewrite_expectations(HEAD, [ExpectUpdate("orders", 7, "out", [])])
    with pytest.raises(RewriteError, match="does not list"):
        rewrite_expectations(HEAD, [ExpectUpdate("orders", 0, "search", [])])
    aliased = HEAD.replace('rejects: [{id: "9"}]', "rejects: *none").replace(
        "rejects: []", "rejects: &none []"
    )
    with pytest.raises(RewriteError, match="alias"):
        rewrite_expectations(aliased, [ExpectUpdate("orders", 1, "rejects", [{"id": "1"}])])
