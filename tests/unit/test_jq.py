"""Meshline's jq engine must be indistinguishable from jq.py (libjq) on every program.

Every case compares :func:`compile_jq` against ``jq.compile(p).input_value(v).all()``,
including ``int``/``float``/``bool`` distinctions and error messages; the documented number
divergences are listed in :func:`_in_reference_form`, and nothing else is forgiven.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import jq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import meshline.transforms.jq as jq_module
from meshline.transforms.jq import JqCompileError, JqError, JqProgram, compile_jq
from meshline.transforms.jqc.numbers import norm


@pytest.fixture(autouse=True)
def _strict(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug in the native evaluator must fail the tests, not quietly fall back to jq.py."""
    monkeypatch.setattr(jq_module, "STRICT", True)


# ----------------------------------------------------------------------------- helpers


def tagged(v: Any) -> Any:
    """A comparable form of a JSON value that distinguishes bool/int/float and key order."""
    if isinstance(v, bool):
        return ("bool", v)
    if isinstance(v, int):
        return ("int", v)
    if isinstance(v, float):
        return ("float", v)
    if isinstance(v, str):
        return ("str", v)
    if v is None:
        return ("null",)
    if isinstance(v, list):
        return ("list", [tagged(x) for x in v])
    if isinstance(v, dict):
        return ("dict", [(k, tagged(x)) for k, x in v.items()])
    return ("?", repr(v))


def reference(program: str, value: Any) -> tuple[str, Any]:
    try:
        return "ok", [tagged(x) for x in jq.compile(program).input_value(value).all()]
    except ValueError as e:
        return "error", str(e)


def _numbers(value: Any) -> list[Any]:
    """The number objects inside ``value``."""
    if type(value) is dict:
        return [n for x in value.values() for n in _numbers(x)]
    if type(value) is list:
        return [n for x in value for n in _numbers(x)]
    return [value] if type(value) in (int, float) else []


def _strings(value: Any) -> list[str]:
    if type(value) is dict:
        return [t for k, x in value.items() for t in (k, *_strings(x))]
    if type(value) is list:
        return [t for x in value for t in _strings(x)]
    return [value] if type(value) is str else []


_FLOAT_LITERAL = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+)(?:[eE][+-]?\d+)?|[-+]?\d+[eE][+-]?\d+")


def _kept_forms(program: str, value: Any) -> set[float]:
    """Integral float values that may reach an output with their form kept (jq 1.7+ literals):
    float literals written in the program, numbers in float form inside the input's strings
    (``tonumber`` keeps them), the input's floats, and the negation and absolute value of each
    (``-``, ``length`` and ``abs`` keep a literal's form)."""
    found = {float(m) for m in _FLOAT_LITERAL.findall(program)}
    for text in _strings(value):
        if _FLOAT_LITERAL.fullmatch(text.strip()):
            found.add(float(text))
    found |= {x for x in _numbers(value) if type(x) is float}
    return {y for x in found if x == x and x.is_integer() for y in (x, -x, abs(x))}


def _in_reference_form(v: Any, passed: set[int], kept: set[float]) -> Any:
    """A JSON value with the documented number divergences from jq.py rendered jq.py's way, and
    nothing else changed (see the ``meshline.transforms.jq`` docstring):

    1. a number the program passes through keeps its form (jq since 1.7): an integral float
       stays ``1.0`` where jq.py gives ``1`` — a number *object* taken from the input, or a
       value among :func:`_kept_forms` (literals); a number the program computed is compared
       as it is;
    2. beyond 2**53, jq.py rounds through a double (and gives an ``int`` or a ``float``), where
       a passed-through integer stays exact and a computed integral number stays a ``float``:
       both sides are compared as doubles there.
    """
    t = type(v)
    if t is dict:
        return {k: _in_reference_form(x, passed, kept) for k, x in v.items()}
    if t is list:
        return [_in_reference_form(x, passed, kept) for x in v]
    if (t is int or t is float) and abs(v) >= 2**53:
        return ("beyond 2**53", float(v))
    if t is float and v.is_integer() and (id(v) in passed or v in kept):
        return norm(v)
    return v


def compare(prog: JqProgram, program: str, value: Any) -> tuple[tuple[str, Any], tuple[str, Any]]:
    """``(ours, jq.py's)`` results of ``program`` on ``value``, to compare.

    bool/int/float are told apart: a computed ``2.0`` where jq.py gives ``2`` is a difference.
    Only the documented divergences (:func:`_in_reference_form`) are rendered jq.py's way first;
    :func:`test_passed_through_numbers_keep_their_type` checks those types themselves.
    """
    status, outs = reference(program, value)
    passed, kept = {id(x) for x in _numbers(value)}, _kept_forms(program, value)
    ref = (status, [_untag_big(x) for x in outs]) if status == "ok" else (status, outs)
    try:
        mine = prog.run(value)
    except JqError as e:
        return ("error", str(e)), ref
    return ("ok", [tagged(_in_reference_form(x, passed, kept)) for x in mine]), ref


def _untag_big(t: Any) -> Any:
    """A :func:`tagged` value with numbers beyond 2**53 as doubles (divergence 2)."""
    if t[0] in ("int", "float") and abs(t[1]) >= 2**53:
        return ("?", repr(("beyond 2**53", float(t[1]))))
    if t[0] == "list":
        return ("list", [_untag_big(x) for x in t[1]])
    if t[0] == "dict":
        return ("dict", [(k, _untag_big(x)) for k, x in t[1]])
    return t


def check(program: str, value: Any, native: bool | None = True) -> None:
    prog = compile_jq(program)
    if native is not None:
        assert prog.native is native, f"{program!r}: native={prog.native}"
    before = copy.deepcopy(value)
    mine, ref = compare(prog, program, value)
    assert mine == ref, f"{program!r} on {json.dumps(value)}"
    assert tagged(value) == tagged(before), f"{program!r} mutated its input"


EVENT = {
    "specversion": "1.0",
    "id": "evt-1",
    "source": "/orders",
    "type": "com.example.order",
    "data": {"amount": 150, "price": "12.50", "tags": ["a", "b"], "customer": {"name": "Ada", "tier": 1.0}},
}

# ----------------------------------------------------------------------------- native table

NATIVE_CASES: list[tuple[str, Any]] = [
    # paths
    (".", EVENT),
    (".data", EVENT),
    (".data.amount", EVENT),
    (".data.customer.name", EVENT),
    ('."data"."amount"', EVENT),
    ('.["data"]["amount"]', EVENT),
    ('.data.["amount"]', EVENT),
    (".missing.deeper", EVENT),
    (".data.tags[0]", EVENT),
    (".data.tags[-1]", EVENT),
    (".data.tags[5]", EVENT),
    (".[1.7]", [1, 2, 3]),
    (".[-5]", [1, 2, 3]),
    (".data.tags[]", EVENT),
    (".[]", {"a": 1, "b": [2]}),
    (".[]?", 5),
    (".foo?", 5),
    (".a.b?", {"a": 5}),
    ("[.[]?.a?]", [1, {"a": 2}]),
    ("(.a.b)?", {"a": 5}),
    ("try .a.b", {"a": 5}),
    (".a[.i]", {"a": [5, 6], "i": 1}),
    ('.[("a","b")]', {"a": 1, "b": 2}),
    (".[1:]", [1, 2, 3]),
    (".[:-1]", "abcd"),
    (".[-2:]", "héllo"),
    (".[1.5:2.5]", [0, 1, 2, 3, 4]),
    (".[2:1]", [0, 1, 2, 3]),
    (".[1:] | .[0]", None),
    ("[..]", [1, [2, {"a": 3}]]),
    # libjq quirk: array slices are views and `==` only compares their storage and length
    (".[1:] == .[:1]", [[{}, {"a": 1}], [{}]]),
    ("[.[1:3], .[0:2]] | (.[0] == .[1]), unique, (.[0] - [.[1]])", [1, 2, 3]),
    (". as $x | ($x[1:] + []) == .[:1]", [5, 6]),
    # literals and constructors
    ("1, 1.0, 1.5, -2, 100000000000000000000, 0.1", None),
    ('"a\\tb\\u00e9\\ud83d\\ude00"', None),
    ("true, false, null", None),
    ("[.a, .b]", {"a": 1, "b": 2}),
    ("[]", None),
    ("{}", None),
    ('{a: .x, "b": 1, c, (.k): .v, "d": 2}', {"x": 1, "c": 3, "k": "kk", "v": 4}),
    ('"k" as $k | {$k, ($k): 1, $k: 2}', None),
    ("{a: (1,2), b: (3,4)}", None),
    ('{(("a","b")): (1,2)}', None),
    ("{a: 1,}", None),
    ("{if: 1, then: .x}", {"x": 2}),
    ('{"a b"}', {"a b": 1}),
    ('{"k\\(.n)": .n}', {"n": 1}),
    ("1 as $x | {$x, y: $x}", None),
    ('"x\\(.a)y\\(.b)"', {"a": 1, "b": [1.5, "s"]}),
    ('"\\(1,2)-\\(3,4)"', None),
    # pipes, comma, parens
    (".a | .b", {"a": {"b": 7}}),
    ("(.a, .b) | . + 1", {"a": 1, "b": 2}),
    ("[.[] | . * 2]", [1, 2.5]),
    # arithmetic
    (".a + .b", {"a": 1, "b": 2}),
    (".a + .b", {"a": 1.5, "b": 1.5}),
    (".a + .b", {"a": "x", "b": None}),
    (".a + .b", {"a": [1], "b": [2]}),
    (".a + .b", {"a": {"x": 1, "y": 2}, "b": {"x": 3}}),
    ("[.[] - 1]", [1, 2.5]),
    (". - [2]", [1, 2, 3, 2]),
    (".a * .b", {"a": {"a": {"b": 1}}, "b": {"a": {"c": 2}}}),
    ('"ab" * (0, 1, 2.5, -1)', None),
    ("10 / 4, 4 / 2, 1 / 3", None),
    ('"a,b,c" / ","', None),
    ("5 % 2, 5.5 % 2, -5 % 3, 5 % -3, 1e20 % 7", None),
    ("[(1,2) + (10,20)]", None),
    ("-(.a)", {"a": 1.5}),
    ("-.", 0.0),
    ("-0, -(0), -0.0, [-1.5] | tojson", None),
    ("9007199254740993 + 0", None),
    (". * 3", 1e300),
    # comparisons and total order
    ("[.[] | . < 1]", [None, False, True, 0, 1.5, "a", [], {}]),
    ("sort", [{"b": 1}, {"a": 2}, [1], "b", "a", 3, 1.5, True, False, None]),
    ("[.[] | . == 1]", [1, 1.0, True, "1"]),
    (". == {b: 2, a: 1}", {"a": 1, "b": 2}),
    ("[.a >= .b, .a <= .b, .a != .b]", {"a": "abc", "b": "abd"}),
    ("9007199254740993 == 9007199254740992", None),
    # logic
    ("[(true,false) and (true,false)]", None),
    ("[(true,false) or (true,false)]", None),
    ("[.[] | not]", [0, "", [], False, None]),
    (".a // .b", {"a": None, "b": 2}),
    (".a // .b", {"a": False, "b": 2}),
    ("(false, null, 1, 2) // 3", None),
    ("empty // 5", None),
    ("(false, null) // (3, 4)", None),
    # conditionals
    ('if . then "t" elif . == false then "f" else "n" end', False),
    ("if . then 1 end", False),
    ("[if (true, false) then 1 else 2 end]", None),
    ("[.[] | select(. > 1)]", [1, 2, 3]),
    ("[select((true, true))]", 1),
    # variables, reduce, foreach
    (". as $x | [$x, $x]", 3),
    ("1 + 2 as $x | $x * 2", None),
    (".[] as $x | $x.a", [{"a": 1}, {"a": 2}]),
    ("reduce .[] as $x (0; . + $x)", [1, 2, 3]),
    ("reduce .[] as $x (0; empty)", [1, 2]),
    ("reduce (1,2,3) as $x (0, 10; . + $x)", None),
    ("reduce .[]? as $x (0, 10; . + $x)", [1, 2]),
    ("[foreach .[] as $x (0; . + $x)]", [1, 2, 3]),
    ("[foreach .[] as $x (0; . + $x; [$x, .])]", [1, 2, 3]),
    # assignment
    (".data.total = (.data.price | tonumber)", EVENT),
    (".a = 1", {"a": 0, "b": 1}),
    (".a = (1, 2)", {}),
    (".a = .b", {"b": 3}),
    (".a.b.c = 1", None),
    (".a[2] = 1", None),
    (".a[-1] = 9", {"a": [1, 2]}),
    ("(.a, .b) = 1", {}),
    (".[] = 0", [5, 6]),
    (".a |= . + 1", {"a": 1}),
    (".a |= empty", {"a": 1, "b": 2}),
    (".[] |= empty", [1, 2, 3]),
    (".[] |= (., .)", [1, 2]),
    (".a += 1", {"a": 1}),
    (".a += (1, 2)", {"a": 1}),
    (".[] += 1", {"a": 1, "b": 2.5}),
    (".a -= 1 | .b *= 2 | .c /= 2 | .d %= 2", {"a": 1, "b": 2, "c": 3, "d": 5}),
    (".a //= 3 | .b //= 4", {"a": None, "b": 0}),
    (".a[] |= . * 10", {"a": [1, 2]}),
    ("(.[] | select(. > 1)) |= 0", [1, 2, 3]),
    (".a? = 1", {}),
    ("(.a, .a.b) |= [.]", {"a": {"b": 1}}),
    ("del(.a)", {"a": 1, "b": 2}),
    ("del(.[0, 2])", [1, 2, 3, 4]),
    ("del(.[-1], .[0])", [1, 2, 3]),
    ("del(.a[0], .b)", {"a": [1, 2], "b": 1}),
    ("del(.[] | select(. == 2))", [1, 2, 3, 2]),
    ("del(.a) | .a = 1", {"a": 0, "b": 1}),
    # builtins
    ("empty", None),
    ("length", [1, 2]),
    ("[.[] | length]", [[1], {"a": 1}, "héllo", -5.5, None]),
    ("utf8bytelength", "héllo"),
    ("keys", {"b": 1, "a": 2, "é": 3, "Z": 4}),
    ("keys, keys_unsorted", {"b": 1, "a": 2}),
    ("keys", [5, 6]),
    ('has("a"), has("z")', {"a": 1}),
    ("has(0), has(1.5), has(-1)", [1, 2]),
    ('"a" | in({"a": 1})', None),
    ('[.[] | inside("abc")]', ["a", "bc", "x"]),
    ('contains("bar")', "foobar"),
    ('contains(["baz", "bar"])', ["foobar", "foobaz", "blarp"]),
    ("contains({foo: 12, bar: [{barp: 12}]})", {"foo": 12, "bar": [1, 2, {"barp": 12, "blip": 13}]}),
    ("map(. + 1)", [1, 2]),
    ("map(., .)", [1, 2]),
    ("map(. + 1)", {"a": 1}),
    ("map_values(. + 1)", {"a": 1, "b": 2}),
    ("map_values(empty)", [1, 2]),
    ("map_values(. // empty)", [1, None, 2, False]),
    ("to_entries", {"a": 1, "b": 2}),
    ("to_entries", [1, 2]),
    ("from_entries", [{"key": "a", "value": 1}, {"name": "c", "Value": 3}, {"Key": "d", "value": 4}]),
    ("from_entries", []),
    ("with_entries(.value += 1)", {"a": 1, "b": 2}),
    ("with_entries(select(.value > 1))", {"a": 1, "b": 2}),
    ("add", [1, 2, 3]),
    ("add", ["a", "b"]),
    ("add", [[1], [2]]),
    ("add", []),
    ("add", {"a": 1, "b": 2}),
    ("add(.[].a)", [{"a": 1}, {"a": 2}]),
    ("any, all", [True, False]),
    ("any, all", []),
    ("any(. > 2), all(. > 0)", [1, 2, 3]),
    ("any(.[]; . == 2), all(.[]; . < 3)", [1, 2, 3]),
    ("tonumber", "149.95"),
    ("[.[] | tonumber]", ["1", "1.5", "+5", "007", ".5", "1e-7", 3]),
    ("tostring", {"a": [1, "é", None]}),
    ("[.[] | tostring]", [1, 1.0, 100.0, 1.5, "x", [1.0], -0.0]),
    ("tojson", {"a": [1, 'x\u0001\u007f\u00e9"\\/'], "b": None}),
    ("[.[] | tojson]", [0.00001, 1e-7, 0.0001, 123456789.123456789, 1e100, 12345678901234567890]),
    ("fromjson", '{"a": [1, 2, "x"], "b": null}'),
    ("type", None),
    ("[.[] | type]", [None, True, 1, 1.5, "s", [], {}]),
    ("ascii_downcase, ascii_upcase", "AbC é Ä"),
    ('startswith("ab"), endswith("bc")', "abc"),
    ('ltrimstr("a"), rtrimstr("c"), rtrimstr(""), trimstr("a")', "abca"),
    ('split(",")', "a,b,,c,"),
    ('split("")', "abc"),
    ('split(",")', ""),
    ('join(",")', ["a", 1, None, True, 2.5]),
    ('join(",")', []),
    ("join(1)", ["a"]),
    ("trim, ltrim, rtrim", "  a \n"),
    ("explode, (explode | implode)", "aé😀"),
    ("implode", [65.7, 1114112, 55296, -1]),
    ("toboolean", "true"),
    ("[.[] | floor, ceil, sqrt, fabs]", [4, 2.25, 2.7]),
    ("[.[] | abs]", [-5, "a", -0.0, 3.5]),
    ("min, max", [3, 1, 2]),
    ("min, max", []),
    ("min_by(.a), max_by(.a)", [{"a": 2}, {"a": 1}, {"a": 2, "b": 1}]),
    ("unique", [3, 1, 1, 2, 1.0]),
    ("unique_by(length)", ["a", "bb", "c"]),
    ("sort_by(.a)", [{"a": 2}, {"a": 1}]),
    ("sort_by(.a, .b)", [{"a": 2, "b": 1}, {"a": 1, "b": 2}, {"a": 1, "b": 1}]),
    ("group_by(.a)", [{"a": 2}, {"a": 1}, {"a": 2}]),
    ("reverse", [1, 2, 3]),
    ("reverse", None),
    ("reverse", ""),
    ("flatten, flatten(1)", [1, [2, [3]]]),
    ("first, last, nth(1)", [1, 2, 3]),
    ("first, last", []),
    ("[first(.[]), last(.[])]", [1, 2, 3]),
    ("[first(empty), last(empty)]", None),
    ('[first(1, error("x"))]', None),
    ('isempty(empty), isempty(.[]), isempty(1, error("x"))', [1]),
    ("[.[] | values], [.[] | nulls], [.[] | booleans], [.[] | numbers]", [1, None, True, "s"]),
    (
        "[.[] | strings], [.[] | arrays], [.[] | objects], [.[] | iterables], [.[] | scalars]",
        [1, "s", [], {}],
    ),
    ("[recurse]", [1, [2]]),
    ("[recurse(.[]?; . != 2)]", [1, [2]]),
    ("[recurse(if . < 3 then . + 1 else empty end)]", 0),
]


@pytest.mark.parametrize(("program", "value"), NATIVE_CASES, ids=[p for p, _ in NATIVE_CASES])
def test_native_matches_jq(program: str, value: Any) -> None:
    check(program, value)


ERROR_CASES: list[tuple[str, Any]] = [
    (".foo", 5),
    (".[0]", {"a": 1}),
    ('.["a"]', [1]),
    (".[]", 5),
    (".[]", None),
    (".[null]", [1]),
    (".a.b // 1", {"a": 5}),
    ('error("x") // 1', None),
    ('"a" + 1', None),
    ("{} - 1", None),
    ("[] - {}", None),
    ("{} * []", None),
    ("null * 2", None),
    ('"abc" / 1', None),
    ("1 / 0", None),
    ("1 % 0", None),
    ("5 % 0.5", None),
    ("-.", [1]),
    ('error("custom")', None),
    ('error({"a": 1})', None),
    ("error(null)", None),
    ("error", 1.0),
    ('error("a") + error("b")', None),
    ('{a: error("a"), b: error("b")}', None),
    ("{(.k): 1}", {"k": 1}),
    (".a = 1", 5),
    (".a |= 1", 5),
    (".[0] = 1", {}),
    (".a[-1] = 1", {"a": []}),
    ("del(.a.b)", {"a": 5}),
    ("keys", 5),
    ("length", True),
    ('has("a")', [1]),
    ('ltrimstr("a")', 5),
    ("ascii_upcase", 5),
    ('split(",")', 5),
    ('join(",")', [[1]]),
    ('contains("b")', ["abc"]),
    ("contains(false)", True),
    ("sort", {}),
    ("floor", "a"),
    ("min", 5),
    ("max_by(.a)", {"x": {"a": 1}}),
    ("sort_by(.a)", 5),
    ("from_entries", [{"key": None, "value": 1}]),
    ("from_entries", [{"key": 1, "value": 1}]),
    ("to_entries", None),
    ("add", 5),
    ("all", 5),
    ("reverse", "abc"),
    ("reverse", {"a": 1}),
    ("reverse", True),
    ("implode", ["a"]),
    ("flatten(-1)", [1]),
    ('flatten("a")', [1, [2]]),
    ("fromjson", 1),
    ("tonumber", [1]),
    (".[1:2]", {"a": 1}),
    ('.["a":]', [1]),
    ("reduce .[] as $x (0, 10; . + $x)", [1, 2]),
    (".a + 1", {"a": "a very long string value that will be truncated in the message"}),
    ('"x" * 10000000000', None),
]


@pytest.mark.parametrize(("program", "value"), ERROR_CASES, ids=[p for p, _ in ERROR_CASES])
def test_native_errors_match_jq(program: str, value: Any) -> None:
    prog = compile_jq(program)
    assert prog.native
    assert reference(program, value)[0] == "error"
    with pytest.raises(JqError) as info:
        prog.run(value)
    assert str(info.value) == reference(program, value)[1]


# Native programs whose result for *this* input can only be reproduced by libjq (a number
# printed with its literal text, nan, a string libjq parses its own way): transparently re-run.
RUNTIME_FALLBACK_CASES: list[tuple[str, Any]] = [
    (". + 0 | tojson", 1e-5),
    ("tojson", 1e-7),
    ("tojson", 1e16),
    (". * 1 | tojson", 1e100),
    ('"1.50" | tonumber | tostring', None),
    ('"1e2" | tonumber | tostring', None),
    ('"-0" | tonumber | tostring', None),
    ('"nan", "Infinity", "" | try tonumber', None),
    ("fromjson", '[1, 2.50, {"a": nan}]'),
    ("fromjson", "1 2"),
    ("sqrt", -1),
    (". * 10", 1e308),
    ("0 * -1 | tojson", None),
    ("- length | tojson", None),
    ("ceil | tojson", -0.5),
    (". == 9007199254740992", 9007199254740993),
    (". < 1e30", 10**30),
]


@pytest.mark.parametrize(
    ("program", "value"), RUNTIME_FALLBACK_CASES, ids=[p for p, _ in RUNTIME_FALLBACK_CASES]
)
def test_runtime_fallback_matches_jq(program: str, value: Any) -> None:
    check(program, value)


FALLBACK_CASES: list[tuple[str, Any]] = [
    ('test("b")', "abc"),
    ('sub("a"; "b")', "aaa"),
    ("@base64", "hi"),
    ("path(.a)", {"a": 1}),
    ('getpath(["a"])', {"a": 1}),
    ("[limit(2; .[])]", [1, 2, 3]),
    ("$__loc__", None),
    ("$ENV | type", None),
    ("def f: . + 1; f", 1),
    ('try error("x") catch .', None),
    (". as [$a, $b] | $a", [1, 2]),
    ("[.[] as [$a] ?// $a | $a]", [[1], 2]),
    ("label $out | 1, break $out", None),
    ("[1e2, 1.50]", None),
    ('.a[1:] = ["x"]', {"a": [1, 2, 3]}),
    ("input", None),
    ("[range(3)]", None),
    ("1 # a comment\n+ 1", None),
]


@pytest.mark.parametrize(("program", "value"), FALLBACK_CASES, ids=[p for p, _ in FALLBACK_CASES])
def test_fallback_programs(program: str, value: Any) -> None:
    prog = compile_jq(program)
    if program.startswith("1 #"):
        assert prog.native  # comments are understood natively
    else:
        assert not prog.native
    mine, ref = compare(prog, program, value)
    assert mine == ref


# ----------------------------------------------------------------------------- API


def test_compile_errors_are_jqs() -> None:
    with pytest.raises(JqCompileError) as info:
        compile_jq(".a |")
    assert "syntax error" in str(info.value)
    with pytest.raises(JqCompileError) as info:
        compile_jq("nosuchfunction")
    assert "nosuchfunction/0 is not defined" in str(info.value)
    assert isinstance(info.value, JqError)


def test_compile_is_cached() -> None:
    assert compile_jq(".data.amount > 100") is compile_jq(".data.amount > 100")


def test_first_and_is_true() -> None:
    prog = compile_jq('.a, error("later")')
    assert prog.first({"a": 1.0}) == 1
    assert type(prog.first({"a": 1.0})) is float  # passed through: kept as it is
    assert compile_jq("empty").first(1, default="d") == "d"
    assert compile_jq('true, error("x")').is_true(None)
    assert not compile_jq("1").is_true(None)
    assert not compile_jq("empty").is_true(None)
    assert compile_jq(".data.amount > 100").is_true(EVENT)
    assert compile_jq(".data.price > 100").is_true(EVENT)  # strings sort after numbers
    with pytest.raises(JqError):
        compile_jq('error("x")').is_true(None)
    # fallback programs behave the same
    assert compile_jq('test("b")').is_true("abc")
    assert compile_jq("[limit(1; .[])]").first([1, 2]) == [1]
    with pytest.raises(JqError):
        compile_jq('error("x") | test("a")').run(None)


@pytest.mark.parametrize(
    ("program", "value", "expected"),
    [
        (".", {"a": 1.0, "b": [2.0, 2.5]}, {"a": 1.0, "b": [2.0, 2.5]}),
        (".c = 9007199254740993", {}, {"c": 9007199254740993}),  # exact, not through a double
        (".x = 1.0 | .y = (2.5 * 2) | .z = (.a + 1)", {"a": 1.0}, {"a": 1.0, "x": 1.0, "y": 5, "z": 2}),
        (".a | tonumber", {"a": "3.0"}, 3.0),
    ],
)
def test_passed_through_numbers_keep_their_type(program: str, value: Any, expected: Any) -> None:
    """Numbers the program does not compute keep their form, like the jq command since 1.7;
    computed integral numbers are ints. jq.py (the reference) makes all integral numbers ints."""
    prog = compile_jq(program)
    assert prog.native
    assert [tagged(x) for x in prog.run(value)] == [tagged(expected)]
    mine, ref = compare(prog, program, value)
    assert mine == ref


def test_the_comparison_tells_a_computed_float_from_an_int() -> None:
    """The comparison itself can fail: only documented divergences are forgiven."""

    class Computes2Point0:
        def run(self, value: Any) -> list[Any]:
            return [2.0]

    mine, ref = compare(Computes2Point0(), "1 + 1", None)  # type: ignore[arg-type]
    assert mine != ref  # jq.py gives the int 2
    mine, ref = compare(Computes2Point0(), "2.0", None)  # type: ignore[arg-type]
    assert mine == ref  # a literal keeps its form (divergence 1)


def test_computed_numbers_beyond_2_53_stay_floats() -> None:
    prog = compile_jq(".a * .b")
    assert [tagged(x) for x in prog.run({"a": 3, "b": 1e300})] == [("float", 3e300)]
    assert tagged(prog.first({"a": 0.5, "b": 4})) == ("int", 2)


def test_updates_do_not_mutate_input() -> None:
    programs = [
        ".data.total = (.data.price | tonumber)",
        '.data.tags[0] = "z"',
        ".data.customer.name |= ascii_upcase",
        '.data.tags += ["c"]',
        '.data.tags[] |= . + "!"',
        "del(.data.customer, .data.tags[0])",
        "map_values(tostring)",
        ".data |= with_entries(.key |= ascii_upcase)",
        "(.. | numbers) |= . + 1",
        ".data.customer.tier //= 5 | .data.new.deep = 1",
        ".data * {customer: {x: 1}}",
    ]
    for program in programs:
        event = copy.deepcopy(EVENT)
        snapshot = copy.deepcopy(event)
        prog = compile_jq(program)
        assert prog.native, program
        mine, _ = compare(prog, program, event)
        assert tagged(event) == tagged(snapshot), program
        assert mine == reference(program, snapshot), program


def test_update_copies_only_the_path() -> None:
    event = copy.deepcopy(EVENT)
    (out,) = compile_jq(".data.total = 1").run(event)
    assert out is not event and out["data"] is not event["data"]
    assert out["data"]["tags"] is event["data"]["tags"]  # untouched branches are shared


def test_deep_input() -> None:
    value: Any = 1
    for _ in range(600):
        value = [value]
    prog = compile_jq("[..] | length")
    assert prog.native
    assert prog.run(value) == [601]


def test_recursion_error_falls_back_to_jq(monkeypatch: pytest.MonkeyPatch) -> None:
    from meshline.transforms.jqc import paths

    def too_deep(v: Any) -> Any:
        raise RecursionError

    monkeypatch.setattr(paths, "recurse_values", too_deep)
    prog = compile_jq("[..] | length")
    assert prog.native
    assert prog.run([[1], 2]) == [4]
    assert prog.first([[1], 2]) == 4


# ----------------------------------------------------------------------------- property tests

_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=6)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([0.5, 1.0, 2.0, -0.0, 100.0, 1.5, "a", "b", "1", "2.5", "", "A,b"])
    | _text
)
_keys = st.sampled_from(["a", "b", "c", "key", "value", "name"]) | _text
json_values = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_keys, children, max_size=4),
    max_leaves=12,
)

PROPERTY_PROGRAMS = [
    ".",
    ".a",
    ".a.b",
    ".[0]",
    ".[]?",
    "[.[]?]",
    '.a? // "default"',
    "[.. | numbers]",
    "[.[]? | type]",
    "length",
    "keys?",
    "[paths]",
    "tojson",
    "tostring",
    "[.[]? | tostring]",
    ". == .",
    "[.[]? | . < 1]",
    "sort?",
    "unique?",
    "[.[]? | . + 1]",
    "[.[]? | . * 2]",
    "[.[]? | . / 3]",
    "[.[]? | . % 3]",
    "[.[]? | -.]",
    ".a = 1",
    ".a |= . + 1",
    ".[]? |= tostring",
    "map_values(length)?",
    "del(.a)",
    "del(.[]?)",
    "to_entries?",
    "with_entries(.value |= tojson)?",
    "add?",
    "any?, all?",
    "min?, max?",
    "[.[]? | select(. != null)]",
    'if type == "object" then keys else [] end',
    "reduce (.. | numbers) as $n (0; . + $n)",
    "[.[]? | tonumber?]",
    "(.. | strings) |= ascii_downcase",
    '[.[]? | tostring | ltrimstr("a") | split(",")]',
    "{a: .a?, t: type, n: (.. | numbers)?}",
    '[.. | select(type == "string")] | join("-")',
    "[limit(2; .[]?)]",
]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_property_native_equals_jq(value: Any) -> None:
    for program in PROPERTY_PROGRAMS:
        prog = compile_jq(program)
        before = copy.deepcopy(value)
        mine, ref = compare(prog, program, value)
        assert mine == ref, program
        assert tagged(value) == tagged(before), program


# fmt: off
_TOKENS = [
    ".", ".a", ".b", ".[]", ".[0]", "..", "?", "|", ",", "(", ")", "[", "]", "{", "}", ":", ";",
    "+", "-", "*", "/", "%", "==", "!=", "<", ">=", "and", "or", "not", "//", "=", "|=", "+=",
    "1", "2", "0.5", "1.0", '"a"', '"b,c"', "true", "null", "$x", "as", "if", "then", "else", "end",
    "reduce", "foreach", "try", "select(", "map(", "length", "keys", "tostring", "tojson", "add",
    "first", "del(", "to_entries", "empty", "error", "sort", "@base64", "\\(", '"x\\(', "#", "\n",
    "test(", "a", "$__loc__", "def f:", "label", "?//", "limit(1;",
]
# fmt: on


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_TOKENS), max_size=10) | st.text(max_size=12), json_values)
def test_property_random_text(tokens: list[str] | str, value: Any) -> None:
    """Any text either compiles or raises JqCompileError; running raises nothing but JqError."""
    program = tokens if isinstance(tokens, str) else " ".join(tokens)
    try:
        prog = compile_jq(program)
    except JqCompileError:
        return
    result, ref = compare(prog, program, value)  # raises nothing but JqError (caught there)
    if prog.native:
        assert result == ref, program


_ATOMS = st.sampled_from(
    [".", ".a", ".b", ".[0]", ".[-1]", ".[]?", ".a?", "..", ".[1:]", "1", "2.5", "-1", '"a"', '"b,c"']
    + ["null", "true", "false", "[]", "{}", "length", "keys?", "tostring", "tojson", "type", "not"]
    + ["add?", "first?", "sort?", "unique?", "to_entries?", "tonumber?", "ascii_downcase?", "empty", "$x"]
)
_PATHS = st.sampled_from(
    [".a", ".b", ".[0]", ".[]?", ".a.b", ".a[0]", "(.a, .b)", ".[]? | select(. != null)", "."]
)


def _grow(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    ops = st.sampled_from(["|", ",", "+", "-", "*", "/", "%", "==", "!=", "<", ">=", "and", "or", "//"])
    return st.one_of(
        st.tuples(children, ops, children).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        children.map(lambda c: f"[{c}]"),
        st.tuples(children, children).map(lambda t: f"{{a: {t[0]}, ({t[1]} | tostring): 1}}"),
        children.map(lambda c: f"select({c})"),
        children.map(lambda c: f"map({c})?"),
        children.map(lambda c: f"({c})?"),
        children.map(lambda c: f'"s\\({c})"'),
        children.map(lambda c: f"[.[]? | {c}] | sort_by(type)"),
        st.tuples(children, children, children).map(lambda t: f"if {t[0]} then {t[1]} else {t[2]} end"),
        st.tuples(_PATHS, st.sampled_from(["=", "|=", "+=", "//="]), children).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        ),
        st.tuples(children, children).map(lambda t: f"({t[0]} as $x | {t[1]})"),
        st.tuples(children, children).map(lambda t: f"reduce .[]? as $x ({t[0]}; {t[1]})"),
        st.tuples(_PATHS, children).map(lambda t: f"del({t[0]}) | {t[1]}"),
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.recursive(_ATOMS, _grow, max_leaves=6), json_values)
def test_property_generated_programs(program: str, value: Any) -> None:
    """Programs from a grammar of the native subset: native == jq.py, and inputs stay intact."""
    try:
        prog = compile_jq(program)
    except JqCompileError:
        return  # e.g. $x unbound
    before = copy.deepcopy(value)
    result, ref = compare(prog, program, value)
    assert tagged(value) == tagged(before), program
    if prog.native:
        assert result == ref, program


# --------------------------------------------------------------------------- straight-line code (pygen)

_STRAIGHT_ATOMS = st.sampled_from(
    [
        ".",
        ".a",
        ".b",
        ".a.b",
        ".data.amount",
        ".a.b.c",
        "1",
        "0",
        "-1",
        "2.5",
        "1.0",
        "100",
        "9007199254740992",
        "9007199254740993",
    ]
    + ['"a"', '"big"', "true", "false", "null", "1e300"]
)
_STRAIGHT_PATHS = st.sampled_from([".a", ".b", ".a.b", ".data.total", ".a.b.c"])


def _straight(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    ops = st.sampled_from(["+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">="])
    return st.one_of(
        st.tuples(children, ops, children).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(children, children).map(lambda t: f"({t[0]} | {t[1]})"),
        st.tuples(_STRAIGHT_PATHS, children).map(lambda t: f"({t[0]} = {t[1]})"),
    )


_straight_values = st.recursive(
    _scalars | st.sampled_from([2**53 + 1, -(2**53) - 1, 2**64, 1.5]),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(["a", "b", "c", "data", "amount"]), children, max_size=4)
    ),
    max_leaves=10,
)


def _outcome(fn: Any, value: Any) -> tuple[str, Any]:
    from meshline.transforms.jqc.errors import Fallback

    try:
        return "ok", tagged(fn(value, ()))
    except JqError as e:
        return "error", str(e)
    except Fallback:
        return "fallback", None


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.recursive(_STRAIGHT_ATOMS, _straight, max_leaves=6), _straight_values)
def test_property_straight_line_code_equals_the_closures(program: str, value: Any) -> None:
    """pygen's one function per program gives what the closure compiler gives: values, types, errors."""
    from meshline.transforms.jqc.compiler import compile_ast
    from meshline.transforms.jqc.parser import parse
    from meshline.transforms.jqc.pygen import generate

    ast = parse(program)
    straight = generate(ast)
    assert straight is not None, program  # the grammar stays inside the subset
    closures = compile_ast(ast)[0]
    assert closures.single
    before = copy.deepcopy(value)
    assert _outcome(straight, value) == _outcome(closures.fn, value), program
    assert tagged(value) == tagged(before), program  # assignments copy, never mutate


@pytest.mark.parametrize(
    "program", [".a?", ".a += 1", ". as $x | $x", "del(.[0])", "reduce .[] as $x (0; . + $x)"]
)
def test_straight_line_code_leaves_the_rest_to_the_closures(program: str) -> None:
    """A program whose outermost node pygen cannot write stays with the closures alone."""
    from meshline.transforms.jqc.parser import parse
    from meshline.transforms.jqc.pygen import generate_program

    assert generate_program(parse(program)) is None


@pytest.mark.parametrize(
    ("program", "single"),
    [
        (".[0]", True),
        ("[.a]", True),
        ("{a: 1, b: .c}", True),
        ("-.a", True),
        ('"\\(.a)-\\(.b)"', True),
        (".a and .b", True),
        ("if .a then .b elif .c then 1 else null end", True),
        (".a // .b", True),
        ("[.items[] | .qty * .price] | add", True),
        ("{n: (.a | length), s: [.a[].b]}", True),
        ("[.a[] | select(.b > 1) | {b}]", True),
        ("{a: [.x[] | . as $v | $v]}", True),  # the binding: a closure inside the function
        (".a, .b", False),
        ("select(.a)", False),
        (".items[] | select(.qty > 0)", False),
        ("numbers, strings", False),
    ],
)
def test_programs_pygen_writes_as_one_function(program: str, single: bool) -> None:
    from meshline.transforms.jqc.parser import parse
    from meshline.transforms.jqc.pygen import generate_program

    g = generate_program(parse(program))
    assert g is not None and g.single is single


@pytest.mark.parametrize(
    ("program", "value"),
    [
        (".a > 9007199254740992", {"a": 2**53 + 1}),  # jq compares doubles: equal, so false
        (".a >= 9007199254740992", {"a": 2**53 + 1}),
        (".a < 1", {"a": True}),
        (".a < 1", {"a": "x"}),
        (".a < 1.5", {"a": None}),
        (".a == 1", {"a": 1.0}),
        (".a.b = 1", {"a": None}),
        (".a.b = 1", {"a": 5}),
        (".a.b = 1", []),
        (".a.b.c = .a", {"a": {"b": {"c": 0}, "x": 1}}),
        (
            '.data.total = (.data.amount * .data.quantity) | .data.status = "big"',
            {"data": {"amount": 2.5, "quantity": 4}},
        ),
        (".a * .b", {"a": 2**53, "b": 3}),
        (".a / 0", {"a": 1}),
        # assignments after an assignment set keys in place, in the objects it built
        (".a.b = 1 | .a = 5 | .a.c = 3", {"a": {}}),  # .a is no longer an object it built
        (".a.b = 1 | .a.c = 2 | .d = (.a.b == 1)", {"a": {"x": [1]}}),
        (".a.b = 1 | .a.c = .a", {"a": {}}),  # the value read is one it built: copies
        (".a.b = 1 | .b = .", {"a": {}}),
        (".a = .z | .a.c = 1", {"z": {"k": 1}}),  # .a holds the input's own object
        (".a.b = 1 | (.c = 2 | .a.b)", {"a": {}}),
        ("(.a.b = 1 | .a.c = 2) | .a", {}),
    ],
)
def test_straight_line_code_on_edge_cases(program: str, value: Any) -> None:
    from meshline.transforms.jqc.compiler import compile_ast
    from meshline.transforms.jqc.parser import parse
    from meshline.transforms.jqc.pygen import generate

    ast = parse(program)
    straight = generate(ast)
    assert straight is not None
    before = tagged(value)
    assert _outcome(straight, value) == _outcome(compile_ast(ast)[0].fn, value)
    assert tagged(value) == before  # the input is never modified


@pytest.mark.parametrize(
    ("program", "value"),
    [
        (".a > 1", {"a": 2}),
        ('.a.b = 1 | .c = "x"', {"a": {}}),
        (".a * .b", {"a": "x", "b": 3}),
        (".a * .b", {"a": {}, "b": 3}),  # jq's error
        ("[..] | length", [[1], 2]),  # closures, not straight-line code
    ],
)
def test_single_gives_what_run_gives(program: str, value: Any) -> None:
    prog = compile_jq(program)
    single = prog.single()
    assert single is not None
    try:
        expected: Any = prog.run(value)
    except JqError as e:
        with pytest.raises(JqError, match=re.escape(str(e))):
            single(value)
        return
    assert [tagged(x) for x in single(value)] == [tagged(x) for x in expected]


def test_single_is_only_for_one_output_programs() -> None:
    assert compile_jq(".[]").single() is None
    assert compile_jq(".a, .b").single() is None
    assert compile_jq("empty").single() is None


def test_single_falls_back_to_jq_like_run(monkeypatch: pytest.MonkeyPatch) -> None:
    from meshline.transforms.jqc import paths

    def too_deep(v: Any) -> Any:
        raise RecursionError

    monkeypatch.setattr(paths, "recurse_values", too_deep)
    single = compile_jq("[..] | length").single()
    assert single is not None and single([[1], 2]) == [4]


# --------------------------------------------------------------------------- trigger chains (pygen.chain)


def _data_only_step(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    assignment = st.tuples(st.sampled_from(["", ".total", ".a", ".b", ".data"]), children).map(
        lambda t: f".data{t[0]} = ({t[1]})"
    )
    return st.lists(assignment, min_size=1, max_size=2).map(" | ".join)


_chain_programs = st.recursive(_STRAIGHT_ATOMS, _straight, max_leaves=4)
_event_data = st.one_of(
    _straight_values,
    st.dictionaries(st.sampled_from(["a", "amount", "quantity", "total"]), _straight_values, max_size=3),
    st.just(None),
    st.just(b"\x00binary"),
)


def _routed(router: Any, events: list[Any]) -> list[Any]:
    """What targets see of each output: its attributes, its data, its JSON form (what JSON writers write)."""
    return [
        (tag, sorted(e.attributes.items()), tagged(e.data), tagged(e.json_form()))
        for tag, e in router.route_many(events)
    ]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(_chain_programs, max_size=2),
    st.lists(_data_only_step(_chain_programs), max_size=2),
    st.lists(_event_data, min_size=1, max_size=4),
)
def test_property_a_trigger_chain_routes_as_its_filters_and_steps_one_by_one(
    filters: list[str], steps: list[str], datas: list[Any]
) -> None:
    """One generated function for a trigger's jq filters and steps: the same outputs,
    dead letters (with their reasons) and metrics as running them one by one."""
    _chain_routes_as_one_by_one(filters, steps or ([] if filters else [".data.total = 1"]), datas)


# Programs that read .data only, or the attributes too (.type and .id are set on every event)
_on_data_programs = st.recursive(
    st.sampled_from(
        [".data.a", ".data.amount", ".data", ".data.a.b", ".type", ".id", ".", "1", '"t"', "null"]
    ),
    _straight,
    max_leaves=4,
)
_dict_data = st.dictionaries(st.sampled_from(["a", "amount", "total"]), _straight_values, max_size=3)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(_on_data_programs, max_size=2),
    st.lists(_data_only_step(_on_data_programs), max_size=2),
    st.lists(_dict_data | st.lists(_straight_values, max_size=2) | st.just(None), min_size=1, max_size=4),
    st.booleans(),
)
def test_property_a_chain_that_reads_only_data_routes_as_one_by_one(
    filters: list[str], steps: list[str], datas: list[Any], forms_known: bool
) -> None:
    """A chain whose programs read nothing but ``.data`` runs on ``{"data": data}`` when the
    event's JSON form is not known yet: the same outputs, dead letters and metrics."""
    _chain_routes_as_one_by_one(
        filters, steps or ([] if filters else [".data.total = 1"]), datas, forms_known
    )


@pytest.mark.parametrize(
    ("program", "reads_data"),
    [
        (".data.amount > 100", True),
        ('.data.total = (.data.amount * .data.quantity) | .data.status = "big"', True),
        (".data.a and (.data.b | not)", True),  # the right of a pipe sees the left's output only
        (".data.x |= . + 1", True),  # `.` is the value at the path
        ('{a: .data.x, b: [.data.y, 1], c: "\\(.data.z)"}', True),
        (".data[.data.k] // 3", True),
        (".data.x = 1 | .data.y = .data.x", True),
        ('.type == "t"', False),
        (".data[.type]", False),
        (".", False),
        ("{data}", True),  # shorthand for {data: .data}
        ("{type}", False),
        (".data.x += .id", False),  # the right of += reads the form
        (".data.x = 1 | .type", False),  # the output of an assignment is the form
        ("[.data.x = 1] | .[0].id", False),
        (".data as $d | $d", False),
        ("length", False),
        (".data.x = (.data | keys)", True),
    ],
)
def test_which_programs_read_nothing_but_data(program: str, reads_data: bool) -> None:
    assert compile_jq(program).reads_data is reads_data


@pytest.mark.parametrize(
    ("filters", "steps", "datas"),
    [
        ([], [".data = null", ".data.a = ."], [{"x": 1}]),  # no data between steps: the form has no "data"
        ([], [".data.a = 1", ".data.b = 2"], [b"\x00binary", None]),  # both data and data_base64
        ([".data.a", "true"], [], [{"a": True}, {"a": 1}, {"a": None}, "text"]),  # only `true` passes
        (["(.data.a > 1)"], [".data.b = (.data.a / 0)"], [{"a": 2}, {"a": 0}]),  # a step's error
    ],
)
def test_a_trigger_chain_routes_as_one_by_one_on_edge_cases(
    filters: list[str], steps: list[str], datas: list[Any]
) -> None:
    _chain_routes_as_one_by_one(filters, steps, datas)


def _chain_routes_as_one_by_one(
    filters: list[str], steps: list[str], datas: list[Any], forms_known: bool = False
) -> None:
    from meshline.compiler.plan import StepPlan, TriggerPlan
    from meshline.compiler.router import Router
    from meshline.events import CloudEvent

    plan = TriggerPlan(
        "t",
        tuple({"jq": f} for f in filters),
        tuple(StepPlan(f"s{i}", "jq", {"program": p}) for i, p in enumerate(steps)),
        "out",
        "dead",
    )
    chained, one_by_one = Router([plan], "it"), Router([plan], "it", fuse=False)
    assert chained.triggers[0].fused is not None  # the grammar stays inside the subset
    assert one_by_one.triggers[0].fused is None
    events = [
        CloudEvent({"specversion": "1.0", "id": f"e{i}", "source": "s", "type": "t"}, data)
        for i, data in enumerate(datas)
    ]
    if forms_known:  # e.g. events read from JSON lines
        for e in events:
            e.json_form()
    before = [tagged(e.data) for e in events]
    assert _routed(chained, events) == _routed(one_by_one, events), (filters, steps)
    assert chained.metrics() == one_by_one.metrics()
    assert [tagged(e.data) for e in events] == before  # inputs are never modified


def _router(filters: list[dict[str, Any]], steps: list[tuple[str, dict[str, Any]]]) -> Any:
    from meshline.compiler.plan import StepPlan, TriggerPlan
    from meshline.compiler.router import Router

    plan = TriggerPlan(
        "t", tuple(filters), tuple(StepPlan(f"s{i}", t, c) for i, (t, c) in enumerate(steps)), "out", "dead"
    )
    return Router([plan], "it")


@pytest.mark.parametrize(
    ("filters", "steps"),
    [
        ([{"exact": {"type": "t"}}, {"jq": ".data.a > 1"}], [("jq", {"program": ".data.b = 1"})]),
        ([{"jq": ".data.a > 1"}], [("jq", {"program": ".data.b = 1"})]),
        ([], [("jq", {"program": ".data.total = (.data.amount * .data.quantity) | .data.status = 1"})]),
        ([{"jq": ".data.a > 1"}, {"jq": '.type == "t"'}], []),
    ],
)
def test_jq_only_triggers_get_a_chain(filters: list[dict[str, Any]], steps: list[Any]) -> None:
    assert _router(filters, steps).triggers[0].fused is not None


@pytest.mark.parametrize(
    ("filters", "steps"),
    [
        ([{"cesql": "type = 't'"}], [("jq", {"program": ".data.b = 1"})]),  # not a jq filter
        ([{"jq": ".data.a > 1"}, {"prefix": {"type": "t"}}], []),
        ([], [("jq", {"program": '.type = "x"'})]),  # changes an attribute: not data-only
        ([], [("jq", {"program": ".data.b = 1", "scope": "data"})]),
        ([], [("jq", {"program": ".data.b |= empty"})]),  # may delete: outside pygen's one-output code
        ([{"jq": "select(.data.a)"}], []),
        ([], [("mapping", {})]),
        ([], []),
    ],
)
def test_other_triggers_run_one_by_one(filters: list[dict[str, Any]], steps: list[Any]) -> None:
    assert _router(filters, steps).triggers[0].fused is None


def test_a_chain_shares_attributes_and_dead_letters_what_fails() -> None:
    from meshline.events import CloudEvent

    r = _router(
        [{"exact": {"type": "order"}}, {"jq": ".data.amount > 100"}],
        [("jq", {"program": '.data.total = (.data.amount * .data.quantity) | .data.status = "big"'})],
    )
    assert r.triggers[0].fused is not None

    def event(i: int, data: Any) -> CloudEvent:
        return CloudEvent({"specversion": "1.0", "id": f"e{i}", "source": "s", "type": "order"}, data)

    ok, small, bad, text = (
        event(0, {"amount": 200, "quantity": 2}),
        event(1, {"amount": 5, "quantity": 2}),
        event(2, {"amount": 200, "quantity": {}}),
        event(3, "not an object"),
    )
    out = r.route_many([ok, small, bad, text])
    assert [(tag, e.id) for tag, e in out] == [("out", "e0"), ("dead", "e2"), ("dead", "e3")]
    assert out[0][1].data == {"amount": 200, "quantity": 2, "total": 400, "status": "big"}
    assert out[0][1].attributes is ok.attributes  # events are immutable: shared, not copied
    assert ok.data == {"amount": 200, "quantity": 2}
    assert "cannot be multiplied" in out[1][1].attributes["meshlineerror"]
    assert "Cannot index string" in out[2][1].attributes["meshlineerror"]
    m = r.metrics()
    assert (m["trigger.t.in"], m["trigger.t.matched"], m["trigger.t.out"]) == (4, 2, 1)
    assert (m["trigger.t.filter_errors"], m["trigger.t.transform_errors"]) == (1, 1)
    assert (m["step.s0.in"], m["step.s0.out"], m["step.s0.failed"]) == (2, 1, 1)


def test_a_bug_in_a_chain_is_not_hidden_by_the_one_by_one_path(monkeypatch: pytest.MonkeyPatch) -> None:
    from meshline.events import CloudEvent
    from meshline.transforms import fused as fused_module

    def broken(form: Any) -> Any:
        raise KeyError("bug")

    monkeypatch.setattr(fused_module, "trigger_chain", lambda filters, steps: (broken, False))
    r = _router([{"jq": ".data.a > 1"}], [])
    assert r.triggers[0].fused is not None
    e = CloudEvent({"specversion": "1.0", "id": "e", "source": "s", "type": "t"}, {"a": 2})
    with pytest.raises(KeyError):  # STRICT (this module's autouse fixture): raised, not hidden
        r.route_many([e])
    monkeypatch.setattr(jq_module, "STRICT", False)
    assert [tag for tag, _ in r.route_many([e])] == ["out"]  # in production: the one-by-one path


def test_a_fused_chain_answers_with_an_event_none_or_unfit() -> None:
    """FusedChain.run: the output event, None when a filter rejects, Unfit when only the
    one-by-one path can say."""
    from meshline.events import CloudEvent
    from meshline.transforms.fused import FusedChain
    from meshline.transforms.steps import JqConfig

    def event(data: Any) -> CloudEvent:
        return CloudEvent({"specversion": "1.0", "id": "e", "source": "s", "type": "t"}, data)

    filters_only = FusedChain.of([{"jq": ".data.a > 1"}, {"jq": ".data.a.b != 0"}], [])
    assert filters_only is not None
    assert filters_only.run(event({"a": 1})) is None
    passed = event({"a": {"b": 1}})
    assert filters_only.run(passed) is passed
    with pytest.raises(FusedChain.Unfit):
        filters_only.run(event({"a": 2}))  # a jq error (.b of a number): the one-by-one path dead-letters it

    step = FusedChain.of([], [("jq", JqConfig(program=".data.b = 1"))])
    assert step is not None
    e = event({"a": 2})
    e.json_form()  # known: the output shares the form the step made
    out = step.run(e)
    assert out is not None and out.data == {"a": 2, "b": 1} and out.attributes is e.attributes
    assert out.known_form() == out.to_dict()
    with pytest.raises(FusedChain.Unfit):
        step.run(event(b"\x00binary"))  # data_base64 in the form: not an event with JSON data

    assert FusedChain.of([{"cesql": "a = 1"}], []) is None
    assert FusedChain.of([], [("jq", JqConfig(program=".data.b = 1", scope="data"))]) is None
    assert FusedChain.of([], [("mapping", object())]) is None


@pytest.mark.parametrize(
    ("program", "value"),
    [
        # a path read in a branch or a loop that did not run is read again after it
        ("[.a[] | .b.c] | (.b.c, length)", {"a": [], "b": {"c": 1}}),
        ("[(if .x then .b.c else 0 end), .b.c]", {"x": False, "b": {"c": 2}}),
        ("{p: (if .x then .b.c else .d end), q: .b.c}", {"x": False, "b": {"c": 3}, "d": 4}),
        ("{p: (.x and .b.c), q: .b.c, r: (.x or .b.c)}", {"x": None, "b": {"c": 5}}),
        ("[.a[] | {k: .b, l: .b.c}] | .[0].k", {"a": [{"b": {"c": 1}}, {"b": None}]}),
        ("{a: .b.c, b: (.b.c = 1 | .b.c), c: .b.c}", {"b": {"c": 7}}),
        (".b.c = 1 | .b.d = 2 | {x: .b.c, y: .b.d}", {"b": {}}),
        ("[.a[] | select(.b.c > 1)] | length", {"a": [{"b": {"c": 2}}, {"b": {"c": 0}}]}),
        ('"\\(.a.b)/\\(.a.c)" | length', {"a": {"b": "x", "c": 1.5}}),
        ("[.a[].b] | add", {"a": [{"b": 1}, {"b": 2.5}]}),
        ("[.a[].b] | add", {"a": {"x": {"b": "s"}, "y": {"b": "t"}}}),
        ("[.a[].b]", {"a": 5}),
        (".a, (.b | .c)", {"a": 1, "b": 5}),
        # |= and del on objects inline, the closures on anything else
        ("del(.data.notes)", {"data": {"notes": 1, "x": 2}}),
        ("del(.data.notes)", {"data": {"x": 2}}),
        ("del(.data.notes)", {"data": None}),
        ("del(.data.notes)", {"data": [1]}),
        ("del(.data.notes)", None),
        ("del(.a)", 5),
        (".data.c |= ascii_downcase", {"data": {"c": "EUR", "z": 1}}),
        (".data.c |= ascii_downcase", {"data": {"c": 1}}),
        (".data.c |= . + 1", {"data": {}}),
        (".data.c |= . + 1", {"data": None}),
        (".data.c |= . + 1", {"data": "s"}),
        (".a |= {b: .}", [1]),
        ('.a |= . * 2 | .b |= "\\(.)!"', {"a": 2, "b": None}),
    ],
)
def test_one_function_programs_match_jq(program: str, value: Any) -> None:
    """pygen's inline objects, arrays, branches, loops and repeated paths: as libjq, as the closures."""
    from meshline.transforms.jqc.compiler import compile_ast
    from meshline.transforms.jqc.parser import parse
    from meshline.transforms.jqc.pygen import generate_program

    ast = parse(program)
    assert generate_program(ast) is not None
    before = tagged(value)
    mine, ref = compare(compile_jq(program), program, value)
    assert mine == ref
    closures = compile_ast(ast)[0]
    try:
        theirs: tuple[str, Any] = ("ok", [tagged(x) for x in closures.multi()(value, ())])
    except JqError as e:
        theirs = ("error", str(e))
    assert mine == theirs
    assert tagged(value) == before
