"""The JSON Schema (draft 2020-12) of an integration file.

:func:`integration_schema` is what ``meshline schema`` prints and editors use for
completion and checking: with ``connectors=True`` (the default) each list's ``type``
is one of its registered ids and the config schema of every registered source,
target and transformation is embedded (``if type == X then config: …``, closed:
an unknown key is flagged); since an editor sees the file before interpolation, a
``${params.X}``/``${env.X}`` string is accepted wherever a number, boolean or
constrained string goes. Validation uses the schema without them
(``connectors=False``); configs are checked in the reference phase, where the
messages can be better located.

Keys starting with ``x-`` are Meshline's own annotations (ignored by validators):
``x-expected`` says in words what a value must be, ``x-keys`` names the keys of a
closed mapping (``filter dialect``) for "unknown key" messages.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from meshline import registry

__all__ = [
    "API_VERSION",
    "ATTRIBUTE_NAME",
    "DIALECTS",
    "DURATION_PATTERN",
    "KIND",
    "NAME_PATTERN",
    "integration_schema",
]

API_VERSION = "meshline.dev/v1alpha1"
KIND = "Integration"
DIALECTS = ("exact", "prefix", "suffix", "all", "any", "not", "cesql", "jq")
# Patterns are checked by Python's re.search and, in editors, as ECMA-262 regexes: a bare
# "$" would also match before a final newline in Python ("name\n"), so names end in
# "$(?!\n)", an end of input in both dialects.
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$(?!\n)"
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$(?!\n)"
PARAMETER_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$(?!\n)"
# the same grammar as meshline.config.parse_duration
DURATION_PATTERN = r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$"
ATTRIBUTE_NAME = r"^[a-z0-9]+$(?!\n)"
_EXTENSION_NAME = r"^(?!data$)[a-z0-9]+$(?!\n)"

_KINDS = {"sources": "source", "targets": "target", "transformations": "transformation"}


def _str(description: str, **kw: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **kw}


def _ref(name: str, description: str) -> dict[str, Any]:
    return {"$ref": f"#/$defs/{name}", "description": description}


def _list(items: dict[str, Any], description: str, **kw: Any) -> dict[str, Any]:
    return {"type": "array", "items": items, "description": description, **kw}


def _closed(properties: dict[str, Any], description: str, **kw: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "properties": properties,
        "additionalProperties": False,
        **kw,
    }


def _attributes(verb: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": f"Matches when every named attribute exists and {verb} the value.",
        "minProperties": 1,
        "propertyNames": {
            "pattern": ATTRIBUTE_NAME,
            "x-expected": "a CloudEvents attribute name (lowercase letters and digits)",
        },
        "additionalProperties": {"type": "string", "description": "The attribute value to compare with."},
        "x-expected": "a mapping of CloudEvents attribute names to strings",
    }


def _filter() -> dict[str, Any]:
    ref = {"$ref": "#/$defs/filter"}
    dialects = ", ".join(DIALECTS)
    return _closed(
        {
            "exact": _attributes("equals (case-sensitive)"),
            "prefix": _attributes("starts with"),
            "suffix": _attributes("ends with"),
            "all": _list(
                ref,
                "Matches when every nested filter matches (in order; stops at the first that does not).",
                minItems=1,
            ),
            "any": _list(
                ref,
                "Matches when at least one nested filter matches (in order; stops at the first that does).",
                minItems=1,
            ),
            "not": {**ref, "description": "Matches when the nested filter does not match."},
            "cesql": _str("A CloudEvents SQL v1 expression; matches when it is true.", minLength=1),
            "jq": _str(
                "A jq program run on the event's JSON form; matches when its first output is true.",
                minLength=1,
            ),
        },
        "One filter: exactly one dialect key (CloudEvents Subscriptions API dialects, plus jq).",
        minProperties=1,
        maxProperties=1,
        **{"x-expected": f"exactly one of the filter dialects {dialects}", "x-keys": "filter dialect"},
    )


def _duration(description: str) -> dict[str, Any]:
    return {"$ref": "#/$defs/duration", "description": description}


def _event(description: str) -> dict[str, Any]:
    attrs = {
        "specversion": _str("CloudEvents spec version (1.0)."),
        "id": _str("Event id."),
        "source": _str("Event source (a URI reference)."),
        "type": _str("Event type, e.g. com.amazon.sqs.message."),
        "subject": _str("Event subject."),
        "time": _str("Event time (RFC 3339)."),
        "datacontenttype": _str("Media type of data, e.g. application/json."),
        "dataschema": _str("URI of the schema data adheres to."),
        "data": {"description": "Event payload (any JSON value)."},
        "data_base64": _str("Binary payload, base64-encoded (instead of data)."),
    }
    return {
        "type": "object",
        "description": description,
        "properties": attrs,
        "patternProperties": {
            _EXTENSION_NAME: {
                "type": ["string", "number", "boolean"],
                "description": "An extension attribute.",
            }
        },
        "additionalProperties": False,
        "x-keys": "attribute",
        "x-more": "or an extension attribute name of lowercase letters and digits",
    }


def _component(kind: str, description: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "required": ["name", "type"],
        "properties": {
            "name": _ref("name", f"Name of this {kind}, unique among the {kind}s."),
            "type": _str(f"The {kind} type (a Meshline id, see `meshline connectors`).", minLength=1),
            "description": _str(f"What this {kind} is for."),
            "config": {
                "type": ["object", "null"],
                "description": f"Configuration of the {kind} type (see `meshline connectors TYPE`).",
            },
        },
        "additionalProperties": False,
    }


def _base_schema() -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://meshline.dev/schemas/v1alpha1/integration.json",
        "title": "Meshline Integration",
        "description": "An integration: where events come from, which matter, how they are reshaped, "
        "where they go. Compiled into an Apache Beam pipeline.",
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": API_VERSION, "description": "The file format version."},
            "kind": {"const": KIND, "description": "Always Integration."},
            "metadata": _closed(
                {
                    "name": _str(
                        "Name of the integration: a lowercase DNS label; names the Beam job.",
                        pattern=DNS_LABEL,
                        maxLength=63,
                        **{
                            "x-expected": "a lowercase DNS label (a-z, 0-9 and '-', starting and ending "
                            "with a letter or digit, at most 63 characters)"
                        },
                    ),
                    "description": _str("What the integration does."),
                    "labels": {
                        "type": "object",
                        "description": "Free-form labels (string values).",
                        "additionalProperties": {"type": "string", "description": "A label value."},
                    },
                },
                "Name and description of the integration.",
                required=["name"],
            ),
            "spec": _closed(
                {
                    "parameters": _list(
                        {"$ref": "#/$defs/parameter"},
                        "Parameters: given as --param NAME=VALUE and as Flex Template parameters; "
                        "used as ${params.NAME}.",
                    ),
                    "sources": _list({"$ref": "#/$defs/source"}, "Where events come from.", minItems=1),
                    "transformations": _list(
                        {"$ref": "#/$defs/transformation"},
                        "Named transformations that triggers use as steps.",
                    ),
                    "targets": _list({"$ref": "#/$defs/target"}, "Where events go.", minItems=1),
                    "triggers": _list(
                        {"$ref": "#/$defs/trigger"},
                        "Routes: which events of which sources go, through which steps, to which target.",
                        minItems=1,
                    ),
                    "deadLetter": _ref(
                        "reference", "Target that receives every failed event of triggers without their own."
                    ),
                    "tests": _list({"$ref": "#/$defs/test"}, "Test cases run by `meshline test`."),
                    "execution": _closed(
                        {
                            "bundleSize": {
                                "type": "integer",
                                "minimum": 1,
                                "description": "Flink: the most elements in one bundle "
                                "(Beam's --max_bundle_size). Default 1000.",
                            },
                            "bundleTime": _duration(
                                "Flink: the longest a bundle stays open before its outputs are handed on "
                                "(Beam's --max_bundle_time_mills); sets the delivery latency. Default 100ms."
                            ),
                            "checkpointInterval": _duration(
                                "Flink, streaming: time between checkpoints (Beam's "
                                "--checkpointing_interval). Sources acknowledge after the checkpoint that "
                                "covers what they emitted, so this sets the acknowledgement latency. "
                                "Default 500ms."
                            ),
                            "fillWait": _duration(
                                "Queue sources: how long one pull waits for more messages once a bundle has "
                                "emitted some. Default 100ms."
                            ),
                            "fillBudget": _duration(
                                "Queue sources: how long a bundle may spend filling up after its first "
                                "message; at most this much latency is added for fuller bundles. "
                                "Default 500ms."
                            ),
                        },
                        "How the runner paces the run: bundle size and time, checkpoints, how long sources "
                        "wait to fill a bundle. Every key is optional; the defaults are chosen per runner "
                        "(docs/runners.md), and Beam options given after `--` win.",
                    ),
                },
                "What the integration does.",
                required=["sources", "targets", "triggers"],
            ),
        },
        "additionalProperties": False,
        "$defs": {
            "name": {
                "type": "string",
                "pattern": NAME_PATTERN,
                "maxLength": 63,
                "description": "A name: letters, digits, '_', '.', '-'; at most 63 characters.",
                "x-expected": "a name of letters, digits, '_', '.' and '-' (at most 63 characters, "
                "starting with a letter or digit)",
            },
            "reference": {"type": "string", "minLength": 1, "description": "The name of a declared item."},
            "duration": {
                "anyOf": [
                    {"type": "string", "pattern": DURATION_PATTERN},
                    {"type": "number", "minimum": 0},
                ],
                "description": "A duration: 200ms, 30s, 5m, 1h, or a number of seconds.",
                "x-expected": "a duration like 200ms, 30s or 5m",
            },
            "parameter": _closed(
                {
                    "name": _str(
                        "Parameter name, used as ${params.NAME} and --param NAME=VALUE.",
                        pattern=PARAMETER_NAME,
                        **{"x-expected": "a parameter name (letters, digits, '_'; no leading digit)"},
                    ),
                    "description": _str("What the parameter is; shown in Flex Template metadata."),
                    "required": {
                        "type": "boolean",
                        "description": "A value must be given (unless there is a default).",
                        "default": False,
                    },
                    "default": {
                        "type": ["string", "number", "boolean"],
                        "description": "Value used when none is given.",
                    },
                    "secret": {
                        "type": "boolean",
                        "description": "The value is never printed: logs, graph and errors show ***.",
                        "default": False,
                    },
                },
                "A parameter of the integration.",
                required=["name"],
            ),
            "source": _component("source", "A source of events."),
            "target": _component("target", "A target that events are delivered to."),
            "transformation": _component("transformation", "A transformation of events."),
            "filter": _filter(),
            "backoff": _closed(
                {
                    "policy": {
                        "enum": ["constant", "linear", "exponential"],
                        "description": "How the delay grows between retries.",
                        "default": "exponential",
                    },
                    "delay": _duration("Delay before the first retry (default 200ms)."),
                    "max": _duration("Longest delay between retries (default 30s)."),
                },
                "Delay between retries.",
            ),
            "delivery": _closed(
                {
                    "retries": {
                        "type": "integer",
                        "minimum": 0,
                        "description": "Retries of a transient delivery failure (default 3).",
                        "default": 3,
                    },
                    "backoff": {"$ref": "#/$defs/backoff", "description": "Delay between retries."},
                    "deadLetter": _ref(
                        "reference", "Target for events of this trigger that fail (default: spec.deadLetter)."
                    ),
                },
                "How the trigger delivers to its target.",
            ),
            "trigger": _closed(
                {
                    "name": _ref("name", "Name of the trigger, unique among the triggers."),
                    "description": _str("What the trigger is for."),
                    "sources": _list(
                        _ref("reference", "A source name."),
                        "Sources whose events this trigger takes (default: every source).",
                        minItems=1,
                        uniqueItems=True,
                    ),
                    "filters": _list(
                        {"$ref": "#/$defs/filter"},
                        "Filters that must all match (AND), evaluated in order (default: none).",
                    ),
                    "steps": _list(
                        _ref("reference", "A transformation name."),
                        "Transformations applied in order (default: none; the event is delivered unchanged).",
                    ),
                    "target": _ref("reference", "The target name events are delivered to."),
                    "delivery": {"$ref": "#/$defs/delivery", "description": "Retries and dead letters."},
                    "filterTimeout": _duration(
                        "The longest one jq filter of this trigger may take on one event; past it the"
                        " event is dead-lettered (stage filter). Default 30s."
                    ),
                },
                "A route from sources through filters and steps to a target.",
                required=["name", "target"],
            ),
            "event": _event("A CloudEvent in its JSON form."),
            "test": _closed(
                {
                    "name": _str("Name of the test case.", minLength=1),
                    "description": _str("What the test case checks."),
                    "inputs": {
                        "type": "object",
                        "description": "Events given to sources, by source name.",
                        "additionalProperties": _list(
                            {"$ref": "#/$defs/event"}, "Events the source emits, in order."
                        ),
                    },
                    "expect": {
                        "type": "object",
                        "description": "Events each target must receive, by target name (order does not "
                        "matter; each lists the attributes and data to compare).",
                        "additionalProperties": _list(
                            {"$ref": "#/$defs/event"}, "Events the target must receive."
                        ),
                    },
                },
                "A test case: inputs for sources and the events targets must receive.",
                required=["name", "inputs", "expect"],
            ),
        },
    }


#: A string holding a ``${params.NAME}`` or ``${env.NAME}`` reference (before interpolation).
PLACEHOLDER_PATTERN = r"\$\{\s*(params|env)\.[A-Za-z0-9_][A-Za-z0-9_.-]*\s*\}"
_PLACEHOLDER = {
    "type": "string",
    "pattern": PLACEHOLDER_PATTERN,
    "description": "A value given by ${params.NAME} or ${env.NAME}, checked once it is substituted.",
}
_SCALARS = frozenset({"integer", "number", "boolean", "string"})
_WRITTEN_OUT = frozenset({"apiVersion", "kind", "type"})  # never a placeholder, for an editor
_KEPT_OUTSIDE = ("description", "default", "examples", "writeOnly", "x-secret", "x-expected")


def _scalar(node: Any) -> bool:
    """Whether a schema node describes one string, number or boolean with a rule on it."""
    if not isinstance(node, dict) or "$ref" in node:
        return False
    branches = node.get("anyOf") or node.get("oneOf")
    if isinstance(branches, list):
        return all(_scalar(b) or (isinstance(b, dict) and b.get("type") in _SCALARS) for b in branches)
    types = node.get("type")
    names = set(types) if isinstance(types, list) else {types} if types is not None else set()
    if names and not names <= _SCALARS:
        return False
    if "enum" in node or "const" in node or "pattern" in node or "format" in node:
        return True
    return bool(names) and "string" not in names  # any string takes a placeholder as it is


def _takes_placeholders(node: Any, name: str = "") -> Any:
    """A copy of a schema where each scalar value may also be a placeholder string.

    The editor sees the file as written: ``port: ${params.port}`` is a string there, and
    becomes a number only when it is substituted. Mappings and lists are kept as they are
    (a parameter's value is a string, number or boolean); ``apiVersion``, ``kind`` and a
    component's ``type`` must be written out.
    """
    if not isinstance(node, dict):
        return node
    out = dict(node)
    for key in ("properties", "patternProperties", "$defs"):
        if isinstance(node.get(key), dict):
            named = key == "properties"
            out[key] = {k: _takes_placeholders(v, k if named else "") for k, v in node[key].items()}
    for key in ("items", "additionalProperties", "not", "then", "else"):
        if isinstance(node.get(key), dict):
            out[key] = _takes_placeholders(node[key])
    if name in _WRITTEN_OUT or not _scalar(out):
        for key in ("anyOf", "oneOf", "allOf"):
            if isinstance(node.get(key), list):
                out[key] = [_takes_placeholders(b) for b in node[key]]
        return out
    placeholder = {"$ref": "#/$defs/placeholder"}
    outside = {k: out.pop(k) for k in _KEPT_OUTSIDE if k in out}
    for key in ("anyOf", "oneOf"):
        if isinstance(out.get(key), list) and len(out) == 1:
            return {key: [*out[key], placeholder], **outside}
    return {"anyOf": [out, placeholder], **outside}


def _with_connectors(schema: dict[str, Any]) -> dict[str, Any]:
    """Embed each registered component's config schema into its kind's definition.

    This is the editor's schema: the component types are enumerated per list, each type's
    config is closed (unknown keys are flagged), and placeholders are accepted where a
    value goes (:func:`_takes_placeholders`).
    """
    schema = _takes_placeholders(schema)
    schema["$defs"]["placeholder"] = dict(_PLACEHOLDER)
    for kind in _KINDS.values():
        branches: list[dict[str, Any]] = []
        try:
            type_ids = registry.ids(kind)  # type: ignore[arg-type]
        except Exception:
            type_ids = []
        for type_id in type_ids:
            try:
                component = registry.lookup(kind, type_id)  # type: ignore[arg-type]
                config = component.schema() if component is not None else None
            except Exception:
                continue
            if config is None:
                continue
            editable = _takes_placeholders(config)
            branches.append(
                {
                    "if": {"properties": {"type": {"const": type_id}}, "required": ["type"]},
                    "then": {"properties": {"config": {**editable, "type": ["object", "null"]}}},
                }
            )
        definition = schema["$defs"][kind]
        if type_ids:
            definition["properties"]["type"]["enum"] = list(type_ids)
        if branches:
            definition["allOf"] = branches
    return schema


@functools.lru_cache(maxsize=1)
def _validation_schema() -> dict[str, Any]:
    return _base_schema()


def integration_schema(connectors: bool = True) -> dict[str, Any]:
    """The JSON Schema of an integration file (a fresh copy each call)."""
    schema = copy.deepcopy(_validation_schema())
    return _with_connectors(schema) if connectors else schema
