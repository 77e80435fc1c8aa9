"""The integration file: load it with line numbers, check it, build the model the compiler uses.

Typical use::

    from meshline.spec import load_file

    result = load_file("orders.yaml", params={"queue_url": url})   # raises SpecError
    for integration in result.integrations:
        ...

The phases are pure functions on plain data, importable one by one for tests and
tools: :func:`parse_yaml` → :func:`interpolate` → :func:`check_schema` →
:func:`check_references` → :func:`apply_defaults` → :func:`build_integration` →
:func:`resolve` (each component with its registry entry and typed config, for the
compiler). ``docs/architecture.md`` follows a file through them to the Beam graph.
"""

from __future__ import annotations

from meshline.spec.defaults import apply_defaults
from meshline.spec.findings import Finding, format_path
from meshline.spec.interpolate import Interpolated, interpolate
from meshline.spec.loader import LoadResult, load_file, load_text
from meshline.spec.model import (
    Backoff,
    ComponentDecl,
    Delivery,
    Integration,
    Parameter,
    TestCase,
    Trigger,
    build_integration,
)
from meshline.spec.redact import Redactor, redact_config
from meshline.spec.resolve import ResolvedComponent, ResolvedIntegration, resolve
from meshline.spec.schema import API_VERSION, KIND, integration_schema
from meshline.spec.schemacheck import check_schema
from meshline.spec.validate import check_references
from meshline.spec.yamlload import Document, LocationTable, parse_yaml

__all__ = [
    "API_VERSION",
    "KIND",
    "Backoff",
    "ComponentDecl",
    "Delivery",
    "Document",
    "Finding",
    "Integration",
    "Interpolated",
    "LoadResult",
    "LocationTable",
    "Parameter",
    "Redactor",
    "ResolvedComponent",
    "ResolvedIntegration",
    "TestCase",
    "Trigger",
    "apply_defaults",
    "build_integration",
    "check_references",
    "check_schema",
    "format_path",
    "integration_schema",
    "interpolate",
    "load_file",
    "load_text",
    "parse_yaml",
    "redact_config",
    "resolve",
]
