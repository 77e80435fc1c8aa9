"""Phase 5: fill in what an integration file may leave out.

Runs on a document that passed the schema and reference checks; returns a new
dict in which every optional key the compiler reads is present:

- ``metadata.description``, component/trigger/test ``description``: ``""``;
- parameters: ``required: false``, ``secret: false``, ``default: None``;
- component ``config``: ``{}``;
- trigger ``sources``: every source; ``filters``/``steps``: ``[]``;
- trigger ``delivery``: ``retries: 3``, ``backoff: {policy: exponential, delay:
  200ms, max: 30s}``, ``deadLetter``: the trigger's, else ``spec.deadLetter``,
  else ``None``;
- ``spec.transformations``/``parameters``/``tests``: ``[]``; test ``inputs``/``expect``: ``{}``.
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["DEFAULT_BACKOFF", "DEFAULT_RETRIES", "apply_defaults"]

DEFAULT_RETRIES = 3
DEFAULT_BACKOFF: dict[str, Any] = {"policy": "exponential", "delay": "200ms", "max": "30s"}


def apply_defaults(data: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``data`` with every default filled in (``data`` is not modified)."""
    out = copy.deepcopy(data)
    metadata = out.setdefault("metadata", {})
    metadata.setdefault("description", "")
    spec = out.setdefault("spec", {})
    for section in ("parameters", "sources", "transformations", "targets", "triggers", "tests"):
        if spec.get(section) is None:
            spec[section] = []
    if spec.get("deadLetter") is None:
        spec["deadLetter"] = None
    for parameter in spec["parameters"]:
        parameter.setdefault("description", "")
        parameter.setdefault("required", False)
        parameter.setdefault("secret", False)
        parameter.setdefault("default", None)
    for section in ("sources", "transformations", "targets"):
        for component in spec[section]:
            component.setdefault("description", "")
            if component.get("config") is None:
                component["config"] = {}
    every_source = [source["name"] for source in spec["sources"]]
    for trigger in spec["triggers"]:
        trigger.setdefault("description", "")
        if trigger.get("sources") is None:
            trigger["sources"] = list(every_source)
        for key in ("filters", "steps"):
            if trigger.get(key) is None:
                trigger[key] = []
        delivery = trigger.get("delivery")
        if delivery is None:
            delivery = trigger["delivery"] = {}
        delivery.setdefault("retries", DEFAULT_RETRIES)
        backoff = delivery.get("backoff")
        if backoff is None:
            backoff = delivery["backoff"] = {}
        for key, value in DEFAULT_BACKOFF.items():
            backoff.setdefault(key, value)
        delivery["deadLetter"] = delivery.get("deadLetter") or spec["deadLetter"]
    for test in spec["tests"]:
        test.setdefault("description", "")
        for key in ("inputs", "expect"):
            if test.get(key) is None:
                test[key] = {}
    return out
