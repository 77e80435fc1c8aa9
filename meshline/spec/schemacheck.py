"""Phase 3: check a document against the integration schema, in words a person reads.

Every ``jsonschema`` error becomes a :class:`~meshline.spec.findings.Finding` at
the error's instance path, with a message that says what was expected and what
was found (``expected a string, found a list``). Unknown keys are reported at the
key, with the allowed keys and the closest one; a misspelt required key is one
finding ("did you mean 'target'?"), not also "missing required key 'target'".
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from meshline.spec.findings import Finding, Path, closest, describe, show, suggest
from meshline.spec.schema import integration_schema

__all__ = ["check_schema"]

_TYPE_WORDS = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
    "null": "null",
}


@functools.lru_cache(maxsize=1)
def _validator() -> Draft202012Validator:
    schema = integration_schema(connectors=False)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _types(value: Any) -> str:
    names = [value] if isinstance(value, str) else list(value)
    return " or ".join(_TYPE_WORDS.get(n, n) for n in names if n != "null" or len(names) == 1)


def _expected(error: ValidationError, default: str) -> str:
    schema = error.schema if isinstance(error.schema, dict) else {}
    return str(schema.get("x-expected", default))


def _number_word(schema: dict[str, Any]) -> str:
    return "an integer" if schema.get("type") == "integer" else "a number"


class _Translator:
    """Turns errors into findings, remembering unknown and missing keys per mapping."""

    def __init__(self) -> None:
        self.findings: list[Finding] = []
        self.unknown: dict[Path, list[tuple[str, list[str], str, str]]] = {}
        self.missing: dict[Path, list[str]] = {}

    def add(self, path: Path, message: str, *, at_key: bool = False) -> None:
        self.findings.append(Finding(path, message, at_key=at_key))

    def translate(self, error: ValidationError) -> None:
        path: Path = tuple(error.absolute_path)
        keyword = error.validator
        value = error.validator_value
        instance = error.instance
        schema = error.schema if isinstance(error.schema, dict) else {}
        if "propertyNames" in error.relative_schema_path:
            self.add(
                (*path, str(instance)),
                f"invalid key {show(instance)}: expected {_expected(error, 'a name')}",
                at_key=True,
            )
        elif keyword == "type":
            self.add(path, f"expected {_expected(error, _types(value))}, found {describe(instance)}")
        elif keyword == "required":
            if isinstance(instance, dict):
                for key in value:
                    if key not in instance:
                        self.missing.setdefault(path, [])
                        if key not in self.missing[path]:
                            self.missing[path].append(key)
        elif keyword == "additionalProperties" and isinstance(instance, dict):
            allowed = sorted(schema.get("properties", {}))
            patterns = list(schema.get("patternProperties", {}))
            what = schema.get("x-keys", "key")
            more = schema.get("x-more", "")
            for key in instance:
                if key in allowed or any(re.search(p, str(key)) for p in patterns):
                    continue
                self.unknown.setdefault(path, []).append((str(key), allowed, what, more))
        elif keyword in ("minProperties", "maxProperties") and isinstance(instance, dict):
            keys = ", ".join(str(k) for k in instance)
            found = "an empty mapping" if not instance else f"{len(instance)} keys ({keys})"
            self.add(path, f"expected {_expected(error, f'{value} key(s)')}, found {found}")
        elif keyword == "enum":
            choices = ", ".join(show(v) for v in value)
            hint = suggest(instance, [v for v in value if isinstance(v, str)])
            self.add(path, f"expected one of {choices}, found {show(instance)}{hint}")
        elif keyword == "const":
            self.add(path, f"expected {show(value)}, found {show(instance)}")
        elif keyword in ("pattern", "minLength", "maxLength", "format"):
            default = {
                "pattern": f"a string matching {value}",
                "minLength": "a non-empty string" if value == 1 else f"at least {value} characters",
                "maxLength": f"at most {value} characters",
                "format": f"a {value}",
            }[keyword]
            found = show(instance)
            if keyword == "maxLength" and isinstance(instance, str):
                found += f" ({len(instance)} characters)"
            self.add(path, f"expected {_expected(error, default)}, found {found}")
        elif keyword in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
            sign = {"minimum": "≥", "exclusiveMinimum": ">", "maximum": "≤", "exclusiveMaximum": "<"}[keyword]
            self.add(path, f"expected {_number_word(schema)} {sign} {value}, found {show(instance)}")
        elif keyword in ("minItems", "maxItems"):
            bound = "at least" if keyword == "minItems" else "at most"
            noun = "item" if value == 1 else "items"
            self.add(
                path, f"expected {_expected(error, f'{bound} {value} {noun}')}, found {describe(instance)}"
            )
        elif keyword == "uniqueItems" and isinstance(instance, list):
            seen: list[Any] = []
            for item in instance:
                if item in seen:
                    self.add(path, f"expected unique items, found {show(item)} more than once")
                    break
                seen.append(item)
        elif keyword in ("anyOf", "oneOf"):
            if "x-expected" in schema:
                self.add(path, f"expected {schema['x-expected']}, found {describe(instance)}")
            elif error.context:
                self.translate(best_match(error.context))
            else:
                self.add(path, error.message)
        else:
            self.add(path, error.message)

    def finish(self) -> list[Finding]:
        """Merge unknown and missing keys of each mapping (a typo is one finding)."""
        out = list(self.findings)
        for path in sorted(set(self.unknown) | set(self.missing), key=str):
            missing = list(self.missing.get(path, []))
            for key, allowed, what, more in self.unknown.get(path, []):
                guess = closest(key, missing) or closest(key, allowed)
                if guess in missing:
                    missing.remove(guess)
                hint = f"; did you mean {guess!r}?" if guess else ""
                listing = ", ".join(allowed) + (f", {more}" if more else "")
                out.append(
                    Finding((*path, key), f"unknown {what}{hint} (expected one of: {listing})", at_key=True)
                )
            for key in missing:
                out.append(Finding(path, f"missing required key {key!r}"))
        return _dedupe(out)


def _dedupe(findings: Iterable[Finding]) -> list[Finding]:
    seen: set[tuple[Path, str]] = set()
    out: list[Finding] = []
    for f in findings:
        if (f.path, f.message) not in seen:
            seen.add((f.path, f.message))
            out.append(f)
    return out


def check_schema(data: Any) -> list[Finding]:
    """Every schema problem of one document (after interpolation), each once."""
    translator = _Translator()
    for error in _validator().iter_errors(data):
        translator.translate(error)
    return translator.finish()
