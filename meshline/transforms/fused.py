"""A trigger's jq filters and jq steps fused into one object with one call.

Run one by one, a trigger's filters and steps cost about ten Python calls per event.
When every filter is a ``jq`` filter and every step a ``jq`` step on the whole event
that assigns under ``.data`` only (``.data.total = …``), :mod:`meshline.transforms.jq`
writes them all as one generated function (:func:`~meshline.transforms.jq.trigger_chain`).
:class:`FusedChain` wraps that function for the compiler:

- :meth:`FusedChain.of` decides from the trigger's filter specs and step configs
  whether it can be fused (``None`` if not);
- :meth:`FusedChain.run` takes an event and returns its output event, or ``None``
  when a filter rejects it, or raises :class:`FusedChain.Unfit` when the chain cannot
  say (a jq error, a fallback to libjq, data that is not JSON …): the caller then runs
  the same filters and steps one by one, which gives the outputs, counts and errors.

What the chain needs of an event goes through :class:`~meshline.events.CloudEvent`'s
public API (:meth:`~meshline.events.CloudEvent.known_form`, the ``form`` argument of
its constructor); nothing outside :mod:`meshline.events` touches its slots.

Layering: this module sits on :mod:`meshline.transforms.jq` and
:mod:`meshline.events`; the compiler imports :class:`FusedChain` and nothing else of
jq's machinery.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from meshline.events import CloudEvent
from meshline.transforms.jq import chain_failed, trigger_chain
from meshline.transforms.jqc.pygen import REJECTED

if TYPE_CHECKING:
    from meshline.transforms.steps import JqConfig

__all__ = ["ChainUnfit", "FusedChain", "data_only_output"]


class ChainUnfit(Exception):
    """:meth:`FusedChain.run` cannot give this event's outcome: run the chain one by one."""


def data_only_output(event: CloudEvent, form: Any, whole: bool = True) -> CloudEvent | None:
    """The output of a program that assigns under ``.data`` only, run on ``event``'s JSON form
    (``whole``) or on ``{"data": data}`` alone.

    The attributes are the input's (events are immutable, so they are shared) and data is
    the output's; ``None`` when ``form`` is not an event's JSON form with JSON data.
    """
    if type(form) is not dict or "data_base64" in form:
        return None
    data = form.get("data")
    if data is not None and whole:
        return CloudEvent(event.attributes, data, form)
    return CloudEvent(event.attributes, data)


class FusedChain:
    """A trigger's jq filters and ``.data``-only jq steps as one call: :meth:`run`."""

    __slots__ = ("_fn", "_on_data", "_steps")

    #: raised by :meth:`run` when the one-by-one path must decide
    Unfit = ChainUnfit

    def __init__(self, fn: Callable[[Any], Any], on_data: bool, steps: bool) -> None:
        self._fn = fn  # the generated function: an event's JSON form -> REJECTED or the last output
        # its programs read nothing but .data: {"data": data} may stand for the JSON form
        self._on_data = on_data
        self._steps = steps  # it has steps (else an event that passes is its own output)

    @classmethod
    def of(
        cls, filters: Sequence[Mapping[str, Any]], steps: Sequence[tuple[str, JqConfig | Any]]
    ) -> FusedChain | None:
        """The fused chain of a trigger, or ``None`` when it cannot be fused.

        ``filters``: the trigger's filter specs (``{"jq": program}`` each, else ``None``);
        ``steps``: ``(transformation type, parsed config)`` of its steps, in order (``jq``
        steps on the whole event each, else ``None``).
        """
        programs = []
        for f in filters:
            if not (isinstance(f, Mapping) and len(f) == 1 and isinstance(f.get("jq"), str)):
                return None
            programs.append(f["jq"])
        step_programs = []
        for type_id, config in steps:
            if type_id != "jq" or config.scope != "event":
                return None
            step_programs.append(config.program)
        if not programs and not step_programs:
            return None
        chain = trigger_chain(programs, step_programs)
        if chain is None:
            return None
        fn, on_data = chain
        return cls(fn, on_data, bool(step_programs))

    def run(self, event: CloudEvent) -> CloudEvent | None:
        """``event``'s output (itself when there are no steps), or ``None`` when a filter
        rejects it; raises :class:`ChainUnfit` when only the one-by-one path can say."""
        form = event.known_form()
        whole = True
        if form is None:
            data = event.data
            if self._on_data and (type(data) is dict or type(data) is list):
                form = {"data": data}  # all the programs read of the form, without building it
                whole = False
            else:
                form = event.json_form()
        try:
            out = self._fn(form)
        except Exception as e:
            chain_failed(e)  # logs (raises in tests) what is not an expected reason
            raise ChainUnfit from None
        if out is REJECTED:
            return None
        if not self._steps:
            return event
        # data_only_output(event, out, whole), inline (one call less per event)
        if type(out) is not dict or "data_base64" in out:
            raise ChainUnfit
        data = out.get("data")
        if data is not None and whole:
            return CloudEvent(event.attributes, data, out)
        return CloudEvent(event.attributes, data)
