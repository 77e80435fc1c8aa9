"""The ``jq`` transformation on whole events: the shortcut for programs that assign under ``.data``."""

from __future__ import annotations

import pytest

from meshline.errors import TransformError
from meshline.events import CloudEvent, from_json_dict
from meshline.registry import BuildContext
from meshline.transforms.jq import compile_jq, data_only_program
from meshline.transforms.steps import JqConfig, build_jq


@pytest.mark.parametrize(
    "program",
    [
        '.data.total = (.data.amount * .data.quantity) | .data.status = "big"',
        ".data = 1",
        ".data.a |= . + 1",
        ".data.items[0].qty += 1",
        "(.data.a) = .type",  # the right-hand side may read attributes
        ".data? .x = 1",
        ".data |= empty",
    ],
)
def test_programs_that_only_assign_under_data(program):
    assert data_only_program(program)


@pytest.mark.parametrize(
    "program",
    [
        ".",
        '.type = "x"',
        '.data.x = 1 | .id = "other"',
        ".datax.y = 1",
        ".data | .x = 1",
        "{data: 1}",
        "del(.data)",
        '.["data"] = 1 | .type = "t"',
        "not valid jq ((",
    ],
)
def test_programs_that_may_change_more(program):
    assert not data_only_program(program)


def _step(program: str):
    return build_jq(JqConfig(program=program), BuildContext(integration="it", name="s"))


EVENTS = [
    CloudEvent(
        {"specversion": "1.0", "id": "1", "source": "s", "type": "t", "region": "eu"},
        {"amount": 120.5, "quantity": 2, "items": [{"qty": 1}], "a": 1},
    ),
    CloudEvent({"specversion": "1.0", "id": "2", "source": "s", "type": "t"}),  # no data
]


@pytest.mark.parametrize(
    "program",
    [
        '.data.total = (.data.amount * .data.quantity) | .data.status = "big"',
        ".data = 1",
        ".data = null",
        ".data.a |= . + 1",
        "(.data.a) = .type",
        ".data |= empty",
    ],
)
@pytest.mark.parametrize("event", EVENTS, ids=["with-data", "without-data"])
def test_the_shortcut_gives_what_the_checked_path_gives(program, event):
    assert compile_jq(program).data_only
    step = _step(program)
    if event.data is None and "*" in program:  # null * null: jq's error, and the step's
        with pytest.raises(TransformError, match="cannot be multiplied"):
            step(event)
        return
    expected = [from_json_dict(o) for o in compile_jq(program).run(event.json_form())]
    got = step(event)
    got_list = got if isinstance(got, list) else [] if got is None else [got]
    assert got_list == expected
    for out in got_list:
        assert out.attributes == event.attributes
        assert out.json_form() == out.to_dict()  # a kept JSON form is exactly the event's


def test_binary_data_is_not_taken_for_json_data():
    event = CloudEvent({"specversion": "1.0", "id": "3", "source": "s", "type": "t"}, b"\x00\x01")
    with pytest.raises(TransformError, match="both data and data_base64"):
        _step(".data.x = 1")(event)
