"""Random filters over random events: a filter answers or raises FilterError, nothing else."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from meshline.errors import FilterError
from meshline.events import CloudEvent
from meshline.transforms.filters import FilterStats, compile_filter

NAMES = st.sampled_from(["type", "source", "id", "subject", "region", "n", "flag", "missing"])
SCALAR = st.one_of(st.text(max_size=6), st.integers(-5, 5), st.booleans())
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False)
    | st.text(max_size=5),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c, max_size=3),
    max_leaves=8,
)
CESQL = st.sampled_from(
    [
        "type = 'a'",
        "n + 1 > 2",
        "INT(subject) = 3",
        "missing = 'x'",
        "region LIKE 'e%'",
        "EXISTS flag AND flag",
        "1 / n = 1",
        "NOT (source IN ('x', 'y'))",
    ]
)
JQ = st.sampled_from(
    [
        ".data.a > 1",
        ".data | length > 0",
        ".data.a + 1 == 2",
        '.data.a | test("x")',
        ".type == .source",
        ".data[0] == 1",
        'error("no")',
        ".data.a.b.c",
        "(.data // 0) * 2 > 1",
    ]
)


def filters(depth: int = 2):
    leaf = st.one_of(
        st.builds(lambda d: {"exact": d}, st.dictionaries(NAMES, SCALAR, min_size=1, max_size=2)),
        st.builds(
            lambda d: {"prefix": d}, st.dictionaries(NAMES, st.text(max_size=3), min_size=1, max_size=2)
        ),
        st.builds(
            lambda d: {"suffix": d}, st.dictionaries(NAMES, st.text(max_size=3), min_size=1, max_size=2)
        ),
        st.builds(lambda e: {"cesql": e}, CESQL),
        st.builds(lambda p: {"jq": p}, JQ),
    )
    if depth == 0:
        return leaf
    inner = filters(depth - 1)
    return st.one_of(
        leaf,
        st.builds(lambda fs: {"all": fs}, st.lists(inner, max_size=3)),
        st.builds(lambda fs: {"any": fs}, st.lists(inner, max_size=3)),
        st.builds(lambda f: {"not": f}, inner),
    )


EVENTS = st.builds(
    lambda extra, data: CloudEvent(
        {"specversion": "1.0", "id": "1", "source": "s", "type": "a", **extra}, data
    ),
    st.dictionaries(st.sampled_from(["subject", "region", "n", "flag"]), SCALAR, max_size=4),
    JSON,
)


@settings(max_examples=400, deadline=None)
@given(filters(), EVENTS)
def test_filters_answer_or_raise_filter_error(spec, event):
    predicate = compile_filter(spec)
    try:
        result = predicate(event, FilterStats())
    except FilterError:
        return
    assert isinstance(result, bool)
