"""CESQL beyond the TCK: filter semantics, error reporting, robustness on arbitrary input."""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshline.transforms.cesql import (
    ERROR_KINDS,
    CesqlError,
    CesqlExpression,
    CesqlParseError,
    compile_cesql,
)

EVENT = {"specversion": "1.0", "id": "1", "source": "/orders", "type": "com.example.order", "myext": "abc"}
INT_MIN, INT_MAX = -(2**31), 2**31 - 1


# -- as a filter ----------------------------------------------------------------------------------


def test_matches_true_only_for_boolean_true_without_errors() -> None:
    assert compile_cesql("type = 'com.example.order' AND source LIKE '/ord%'").matches(EVENT) == (True, [])
    assert compile_cesql("type = 'other'").matches(EVENT) == (False, [])


def test_missing_attribute_does_not_match_and_reports_one_error() -> None:
    passed, errors = compile_cesql("subject = 'x'").matches(EVENT)

    assert passed is False
    assert [(e.kind, e.column) for e in errors] == [("missingAttribute", 1)]
    assert "subject" in str(errors[0])


@pytest.mark.parametrize("expression", ["NOT (subject = 'x')", "subject != 'x'", "NOT subject"])
def test_missing_attribute_never_fails_open(expression: str) -> None:
    passed, errors = compile_cesql(expression).matches(EVENT)

    assert passed is False
    assert errors[0].kind == "missingAttribute"


def test_failed_cast_does_not_match() -> None:
    # 'abc' cannot be an Integer: the cast gives 0, so 0 < 5 is true, but the error vetoes the match.
    expression = compile_cesql("myext < 5")

    assert expression.evaluate(EVENT)[0] is True
    passed, errors = expression.matches(EVENT)
    assert passed is False
    assert [e.kind for e in errors] == ["cast"]


def test_non_boolean_result_does_not_match() -> None:
    passed, errors = compile_cesql("myext").matches(EVENT)

    assert passed is False
    assert [e.kind for e in errors] == ["generic"]
    assert "Boolean" in str(errors[0])


# -- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "column"),
    [
        ("type = 'x' AND", 15),
        ("source LIKE 5", 13),
        ("type = 'unterminated", 8),
        ("type == 'x'", 7),
        ("", 1),
        ("a_b = 1", 1),
        ("2147483648 > 0", 1),
    ],
)
def test_parse_error_names_the_column(expression: str, column: int) -> None:
    with pytest.raises(CesqlParseError) as raised:
        compile_cesql(expression)

    assert raised.value.kind == "parse"
    assert raised.value.column == column
    assert f"column {column}" in str(raised.value)


def test_evaluation_goes_on_after_an_error_and_reports_all_in_order() -> None:
    value, errors = compile_cesql("INT('a') + INT('b')").evaluate(EVENT)

    assert value == 0
    assert [(e.kind, e.column) for e in errors] == [("cast", 1), ("cast", 12)]


def test_unknown_function_is_an_evaluation_error() -> None:
    value, errors = compile_cesql("NOPE(type)").evaluate(EVENT)

    assert value is False
    assert [e.kind for e in errors] == ["missingFunction"]


@pytest.mark.parametrize(
    "expression",
    ["(" * 1000 + "1" + ")" * 1000, "NOT " * 1000 + "TRUE", "-" * 1000 + "1", "1" + " + 1" * 1000],
)
def test_deep_nesting_is_a_parse_error_not_a_crash(expression: str) -> None:
    with pytest.raises(CesqlParseError, match="nested too deeply"):
        compile_cesql(expression)


def test_long_flat_disjunction_compiles() -> None:
    expression = compile_cesql(" OR ".join(f"type = 't{i}'" for i in range(1000)))

    assert expression.evaluate({**EVENT, "type": "t999"}) == (True, [])


# -- other behaviour ------------------------------------------------------------------------------


def test_identifiers_and_keywords_are_case_insensitive() -> None:
    assert compile_cesql("TYPE Like 'com.%' and Exists MyExt").evaluate(EVENT) == (True, [])


def test_compiled_expression_pickles_by_its_text() -> None:
    expression = compile_cesql("myext IN ('abc', 'def')")

    restored = pickle.loads(pickle.dumps(expression))

    assert restored.expression == expression.expression
    assert restored.evaluate(EVENT) == (True, [])


def test_result_type_is_known_statically() -> None:
    assert compile_cesql("type = 'x'").result_type == "Boolean"
    assert compile_cesql("LENGTH(type) + 1").result_type == "Integer"
    assert compile_cesql("type").result_type is None


# -- properties -----------------------------------------------------------------------------------

_TOKENS = [
    "(", ")", ",", "'a'", '"b%"', "'\\'", "'", '"', "\\", "1", "-2147483648", "2147483648", "-", "+", "*",
    "/", "%", "=", "!=", "<>", "<=", ">", "NOT", "and", "Or", "XOR", "LIKE", "IN", "EXISTS", "TRUE",
    "false", "type", "myext", "n", "x_y", "ABS", "concat", "SUBSTRING", "NOPE", "_",
]  # fmt: skip
_NAMES = ["id", "type", "source", "myext", "n", "flag", "Missing"]
_FUNCTIONS = [
    "ABS", "LENGTH", "CONCAT", "CONCAT_WS", "LOWER", "UPPER", "TRIM", "LEFT", "RIGHT", "SUBSTRING",
    "INT", "BOOL", "STRING", "IS_BOOL", "IS_INT", "IS_STRING", "NOPE",
]  # fmt: skip
_BINARY = ["AND", "OR", "XOR", "=", "!=", "<>", "<", "<=", ">", ">=", "+", "-", "*", "/", "%"]

_random_text = st.one_of(
    st.text(max_size=40),
    st.lists(st.sampled_from(_TOKENS), max_size=16).map(" ".join),
    st.lists(st.sampled_from(_TOKENS), max_size=16).map("".join),
)


def _string_literal(text: str) -> str:
    return "'" + text.replace("'", "\\'") + "'"


_literals = st.one_of(
    st.integers(INT_MIN, INT_MAX).map(str),
    st.text(alphabet="ab1-0 tTrueFALS%_\"'", max_size=6).map(_string_literal),
    st.sampled_from(["TRUE", "false"]),
)
_patterns = st.lists(st.sampled_from(["a", "b", "1", "%", "_", "\\%", "\\_", "\\\\", "."]), max_size=6).map(
    lambda parts: "'" + "".join(parts) + "'"
)


def _extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(inner, st.sampled_from(_BINARY), inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(inner, st.sampled_from(_BINARY), inner).map(" ".join),
        inner.map(lambda x: f"NOT {x}"),
        inner.map(lambda x: f"-({x})"),
        st.tuples(inner, st.sampled_from(["LIKE", "NOT LIKE"]), _patterns).map(" ".join),
        st.tuples(inner, st.sampled_from(["IN", "NOT IN"]), st.lists(inner, min_size=1, max_size=3)).map(
            lambda t: f"{t[0]} {t[1]} ({', '.join(t[2])})"
        ),
        st.tuples(st.sampled_from(_FUNCTIONS), st.lists(inner, max_size=3)).map(
            lambda t: f"{t[0]}({', '.join(t[1])})"
        ),
    )


_expressions = st.recursive(
    st.one_of(_literals, st.sampled_from(_NAMES), st.sampled_from(_NAMES).map("EXISTS {}".format)),
    _extend,
    max_leaves=12,
)
_attribute_values = st.one_of(
    st.booleans(),
    st.integers(INT_MIN - 5, INT_MAX + 5),
    st.sampled_from(["", "abc", "12", "-3", "true", "FALSE", "2147483648", " 1", "%_"]),
    st.text(max_size=6),
)
_attributes = st.dictionaries(st.sampled_from([n.lower() for n in _NAMES]), _attribute_values)


def _described(errors: list[CesqlError]) -> list[tuple[str, str, int]]:
    return [(e.kind, e.message, e.column) for e in errors]


def _check_outcome(expression: CesqlExpression, attributes: Mapping[str, object]) -> None:
    value, errors = expression.evaluate(attributes)
    assert type(value) in (bool, int, str)
    if type(value) is int:
        assert INT_MIN <= value <= INT_MAX
    assert all(isinstance(e, CesqlError) and e.kind in ERROR_KINDS and e.kind != "parse" for e in errors)
    again, errors_again = expression.evaluate(attributes)  # deterministic: no state kept between calls
    assert (again, _described(errors_again)) == (value, _described(errors))
    passed, filter_errors = expression.matches(attributes)
    assert passed is (value is True and not errors)
    assert _described(filter_errors[: len(errors)]) == _described(errors)


def _compile_or_error(text: str) -> CesqlExpression | CesqlParseError:
    try:
        return compile_cesql(text)
    except CesqlParseError as error:
        return error


@settings(max_examples=300, deadline=None)
@given(_random_text)
def test_any_text_compiles_or_raises_a_parse_error(text: str) -> None:
    outcome = _compile_or_error(text)  # any other exception fails the test

    if isinstance(outcome, CesqlParseError):
        assert 1 <= outcome.column <= len(text) + 1
    else:
        _check_outcome(outcome, EVENT)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_expressions, _attributes)
def test_evaluation_never_raises(text: str, attributes: dict[str, object]) -> None:
    outcome = _compile_or_error(text)

    if isinstance(outcome, CesqlParseError):  # the grammar generates only valid expressions, maybe deep ones
        assert "nested too deeply" in outcome.message
    else:
        _check_outcome(outcome, attributes)


# Literals and attributes holding the same values must evaluate alike: this checks the compile-time
# paths (folding, pre-cast literals, literal IN sets) against the run-time ones they stand in for.

_Tree = tuple[Any, ...]
_values = st.one_of(
    st.integers(INT_MIN, INT_MAX), st.text(alphabet="ab1-0 tTrueFALS", max_size=5), st.booleans()
)
_trees = st.recursive(
    _values.map(lambda value: ("value", value)),
    lambda inner: st.one_of(
        st.tuples(st.just("binary"), inner, st.sampled_from(_BINARY), inner),
        st.tuples(st.just("unary"), st.sampled_from(["NOT", "-"]), inner),
        st.tuples(st.just("like"), inner, st.sampled_from(["LIKE", "NOT LIKE"]), _patterns),
        st.tuples(
            st.just("in"), inner, st.sampled_from(["IN", "NOT IN"]), st.lists(inner, min_size=1, max_size=3)
        ),
        st.tuples(st.just("call"), st.sampled_from(_FUNCTIONS), st.lists(inner, max_size=3)),
    ),
    max_leaves=10,
)


def _render(tree: _Tree, attributes: dict[str, object] | None) -> str:
    """The expression text; with ``attributes``, each value becomes an attribute holding it."""
    kind, *rest = tree
    if kind == "value":
        (value,) = rest
        if attributes is not None:
            attributes[f"v{len(attributes)}"] = value
            return f"v{len(attributes) - 1}"
        if isinstance(value, bool):
            return "TRUE" if value else "FALSE"
        return f"({value})" if isinstance(value, int) else _string_literal(value)
    if kind == "binary":
        return f"({_render(rest[0], attributes)} {rest[1]} {_render(rest[2], attributes)})"
    if kind == "unary":
        return f"({rest[0]} {_render(rest[1], attributes)})"
    if kind == "like":
        return f"({_render(rest[0], attributes)} {rest[1]} {rest[2]})"
    if kind == "in":
        items = ", ".join(_render(item, attributes) for item in rest[2])
        return f"({_render(rest[0], attributes)} {rest[1]} ({items}))"
    return f"{rest[0]}({', '.join(_render(arg, attributes) for arg in rest[1])})"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_trees)
def test_literals_and_attributes_evaluate_alike(tree: _Tree) -> None:
    attributes: dict[str, object] = {}
    with_literals, with_attributes = _render(tree, None), _render(tree, attributes)
    outcome = _compile_or_error(with_literals)
    if isinstance(outcome, CesqlParseError):
        assert "nested too deeply" in outcome.message
        return

    value, errors = outcome.evaluate({})
    value_too, errors_too = compile_cesql(with_attributes).evaluate(attributes)

    assert (type(value_too), value_too) == (type(value), value)
    assert [e.kind for e in errors_too] == [e.kind for e in errors]


# -- what validate reports ------------------------------------------------------------------------

_FILE = """\
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {{name: c}}
spec:
  sources: [{{name: in, type: generate, config: {{count: 1}}}}]
  targets: [{{name: out, type: log}}]
  triggers:
    - name: t
      target: out
      filters:
        - cesql: "{expression}"
"""


@pytest.mark.parametrize(
    ("expression", "said"),
    [
        ("LOWR(type) = 'x'", "column 1: unknown function LOWR; did you mean LOWER?"),
        ("type != 'x' AND SUBSTRING(type) = 'y'", "column 17: SUBSTRING takes 2 or 3 argument(s), not 1"),
        ("NOT IS_INT()", "column 5: IS_INT takes 1 argument(s), not 0"),
        ("CONCAT_WS() = ''", "column 1: CONCAT_WS takes 1 or more argument(s), not 0"),
    ],
)
def test_validate_names_a_call_no_function_takes(expression: str, said: str) -> None:
    from meshline.errors import SpecError
    from meshline.spec import load_text

    with pytest.raises(SpecError) as e:
        load_text(_FILE.format(expression=expression), "c.yaml", strict=False)
    (problem,) = e.value.problems
    assert str(problem.location) == "c.yaml:11:18", problem
    prefix = "spec.triggers[0].filters[0].cesql: CESQL expression never matches: "
    assert problem.message.startswith(prefix + said), problem.message
    # the expression still compiles: at run time the call is false with a missingFunction error (spec 3.5)
    _, errors = compile_cesql(expression).evaluate(EVENT)
    assert any(err.kind == "missingFunction" for err in errors)


def test_validate_accepts_every_built_in_function_with_its_arity() -> None:
    from meshline.spec import load_text

    expression = (
        "ABS(1) = 1 AND LENGTH('a') = 1 AND CONCAT() = '' AND CONCAT_WS(',', 'a') = 'a' AND "
        "lower(type) = upper(type) AND TRIM(' a') = LEFT('a', 1) AND RIGHT('a', 1) = SUBSTRING('a', 1) "
        "AND SUBSTRING('ab', 1, 1) = STRING(1) AND INT('1') = 1 AND BOOL('true') AND IS_INT('1') "
        "AND IS_BOOL('true') AND IS_STRING(id)"
    )
    result = load_text(_FILE.format(expression=expression), "c.yaml", strict=False)
    assert [i.name for i in result.integrations] == ["c"]
