"""Phase 1: YAML → plain values with a location table (meshline.spec.yamlload), and file reading."""

from __future__ import annotations

import pytest

from meshline.errors import Location, SpecError
from meshline.spec import load_file, load_text, parse_yaml
from meshline.spec.yamlload import MAX_DEPTH, decode


def _one(text: str):
    documents, problems = parse_yaml(text, "f.yaml")
    assert problems == []
    assert len(documents) == 1
    return documents[0]


def _messages(text: str | bytes) -> list[str]:
    _, problems = parse_yaml(text, "f.yaml")
    return [str(p) for p in problems]


def test_values_are_plain_python():
    doc = _one("a: 1\nb: 2.5\nc: true\nd: null\ne: [x, 'y']\nf: {g: h}\nt: 2024-01-01\n")
    assert doc.data == {
        "a": 1,
        "b": 2.5,
        "c": True,
        "d": None,
        "e": ["x", "y"],
        "f": {"g": "h"},
        "t": "2024-01-01",
    }


def test_keys_are_strings_as_written():
    doc = _one("on: 1\n2: two\nnull: 3\n")
    assert doc.data == {"on": 1, "2": "two", "null": 3}


def test_locations_of_values_and_keys():
    text = "spec:\n  triggers:\n    - name: t\n      target:   search\n"
    doc = _one(text)
    table = doc.table
    path = ("spec", "triggers", 0, "target")
    assert table.values[path] == (4, 17)
    assert table.keys[path] == (4, 7)
    assert table.values[("spec", "triggers", 0)] == (3, 7)
    assert table.location(path, key=True) == Location("f.yaml", 4, 7)
    assert table.location(path) == Location("f.yaml", 4, 17)


def test_location_falls_back_to_nearest_parent():
    doc = _one("spec:\n  sources: []\n")
    assert doc.table.location(("spec", "sources", 3, "config", "x")) == Location("f.yaml", 2, 12)
    assert doc.table.location(("nothing",)) == Location("f.yaml", 1, 1)


def test_flow_collections_have_locations():
    doc = _one("config: {hosts: [a, b], index: orders}\n")
    assert doc.table.values[("config", "hosts", 1)] == (1, 21)
    assert doc.table.keys[("config", "index")] == (1, 25)


def test_several_documents_and_empty_ones_are_ignored():
    text = "---\n---\na: 1\n---\n# only a comment\n---\nb: 2\n...\n"
    documents, problems = parse_yaml(text, "f.yaml")
    assert problems == []
    assert [d.data for d in documents] == [{"a": 1}, {"b": 2}]
    assert documents[1].table.values[("b",)] == (7, 4)


def test_empty_text_has_no_documents():
    assert parse_yaml("", "f.yaml") == ([], [])
    assert parse_yaml("# nothing\n", "f.yaml") == ([], [])


def test_duplicate_key_is_reported_at_the_second_and_the_first_is_kept():
    text = "name: a\nother: 1\nname: b\n"
    documents, problems = parse_yaml(text, "f.yaml")
    assert [str(p) for p in problems] == ["f.yaml:3:1: duplicate key 'name' (first defined at line 1)"]
    assert documents[0].data == {"name": "a", "other": 1}


def test_syntax_error_is_one_problem_at_its_mark():
    assert _messages("a: 1\nb: [1, 2\nc: 3\n") == [
        "f.yaml:3:2: invalid YAML: expected ',' or ']', but got ':' "
        "(while parsing a flow sequence that starts at line 2)"
    ]


def test_syntax_error_in_a_later_document_yields_no_documents():
    documents, problems = parse_yaml("a: 1\n---\nb: : :\n  - x\n", "f.yaml")
    assert documents == []
    assert len(problems) == 1
    assert str(problems[0]).startswith("f.yaml:3:")


def test_tab_indentation_is_a_located_problem():
    (message,) = _messages("a:\n\tb: 1\n")
    assert message.startswith("f.yaml:2:1: invalid YAML: found character '\\t'")


def test_top_level_must_be_a_mapping():
    assert _messages("- a\n- b\n") == [
        "f.yaml:1:1: expected an Integration (a mapping with apiVersion, kind, metadata and spec), found a "
        "list"
    ]
    assert _messages("just text\n") == [
        "f.yaml:1:1: expected an Integration (a mapping with apiVersion, kind, metadata and spec), "
        "found the string 'just text'"
    ]


def test_non_utf8_bytes_are_a_clear_problem():
    with pytest.raises(SpecError) as info:
        parse_yaml(b"a: 1\nb: \xff\xfe\xfa\n", "f.yaml")
    assert str(info.value) == (
        "f.yaml:2:4: the file is not UTF-8 text (byte 0xff at offset 8); integration files are YAML in UTF-8"
    )


def test_utf8_bom_and_utf16_are_read():
    assert decode("a: é".encode("utf-8-sig"), "f") == "a: é"
    assert decode("a: é".encode("utf-16"), "f") == "a: é"


def test_control_characters_are_a_located_problem():
    assert _messages("a: 1\nb: x\x00y\n") == [
        "f.yaml:2:5: invalid YAML: the character #x0000 is not allowed in a YAML file (binary data?)"
    ]


def test_unsupported_tags_and_complex_keys():
    messages = _messages("a: !foo bar\nb: !!binary aGVsbG8=\n? [x]\n: 1\n")
    assert messages == [
        "f.yaml:1:4: unsupported YAML tag '!foo' (only plain values are allowed)",
        "f.yaml:2:4: unsupported YAML tag 'tag:yaml.org,2002:binary' (only plain values are allowed)",
        "f.yaml:3:3: a mapping key must be a plain value, found a list",
    ]


def test_bad_explicit_scalar_tag():
    assert _messages("a: !!int abc\n") == ["f.yaml:1:4: 'abc' is not a valid int"]


def test_merge_keys_and_aliases():
    text = "base: &b {region: eu, retries: 1}\nthis:\n  <<: *b\n  retries: 2\nlist: [*b]\n"
    doc = _one(text)
    assert doc.data["this"] == {"retries": 2, "region": "eu"}
    assert doc.data["list"] == [{"region": "eu", "retries": 1}]
    assert doc.table.values[("this", "retries")] == (4, 12)


def test_recursive_alias_is_a_problem_not_a_hang():
    assert _messages("a: &x [1, *x]\n") == ["f.yaml:1:4: recursive alias: a value contains itself"]
    assert _messages("a: &x {<<: *x}\n") == ["f.yaml:1:4: recursive alias: a mapping merges itself"]


def test_alias_bomb_is_bounded():
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        refs = ", ".join([f"*a{i - 1}"] * 10)
        lines.append(f"a{i}: &a{i} [{refs}]")
    (message,) = _messages("\n".join(lines) + "\n")
    assert "the document is too large" in message


def test_deep_nesting_is_bounded():
    text = "a: " + "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5) + "\n"
    (message,) = _messages(text)
    assert "nested" in message
    text = "a: " + "[" * 5000 + "]" * 5000 + "\n"
    (message,) = _messages(text)
    assert "nested" in message


def test_load_file_that_does_not_exist(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(SpecError) as info:
        load_file(missing)
    assert str(info.value) == f"{missing}: cannot read: No such file or directory"


def test_load_file_that_is_a_directory(tmp_path):
    with pytest.raises(SpecError) as info:
        load_file(tmp_path)
    assert str(info.value) == f"{tmp_path}: cannot read: Is a directory"


def test_load_text_of_an_empty_file():
    with pytest.raises(SpecError) as info:
        load_text("# nothing here\n", "empty.yaml")
    assert str(info.value) == "empty.yaml: no integration found: the file has no YAML documents"


def test_load_file_with_binary_junk(tmp_path):
    path = tmp_path / "junk.yaml"
    path.write_bytes(bytes(range(256)))
    with pytest.raises(SpecError) as info:
        load_file(path)
    assert len(info.value.problems) == 1
    assert str(info.value) == (
        f"{path}:2:118: the file is not UTF-8 text (byte 0x80 at offset 128); integration files are YAML in "
        "UTF-8"
    )
