"""Phase 2b: relative paths in configs resolve against the integration file's directory.

A config key that may hold a local path is marked on its declaration
(``doc(..., path=True)``: the ``file`` source's and target's ``path``, the ``xslt``
``stylesheet``, TLS and key files …, see :func:`meshline.config.path_fields`). After
interpolation, :func:`resolve_paths` makes such a value absolute when it is relative:

- written in the file — literally or through a parameter's ``default`` — it is read
  against the directory of the integration file, so a file runs the same from any
  directory;
- starting with a value the caller gave — a ``--param`` value or an environment
  variable — it is read against the current directory, where the caller typed it.

Left as they are: absolute paths, URLs (``gs://…``, ``file://…``), inline content (XML,
PEM text: a value with a line break or starting with ``<`` or ``-----``), secrets and
placeholders; ``~/`` is expanded.
"""

from __future__ import annotations

import os
import re
from typing import Any

from meshline.config import path_fields
from meshline.secrets import Secret
from meshline.spec.findings import Path

__all__ = ["is_local_relative", "resolve_paths"]

_KINDS = {"sources": "source", "targets": "target", "transformations": "transformation"}
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_local_relative(value: Any) -> bool:
    """Whether ``value`` reads as a relative path on the local filesystem."""
    if type(value) is not str or not value.strip() or "${" in value:
        return False
    if "\n" in value or value.lstrip().startswith(("<", "-----")):
        return False  # inline content
    return not (_SCHEME.match(value) or os.path.isabs(value) or value.startswith("~"))


def _resolve(value: Any, base: str) -> Any:
    if type(value) is str and value.startswith("~"):
        return os.path.expanduser(value)
    if is_local_relative(value):
        return os.path.normpath(os.path.join(base, value))
    return value


def _fields(section: str, type_id: Any) -> tuple[str, ...]:
    from meshline import registry

    if not isinstance(type_id, str):
        return ()
    try:
        component = registry.lookup(_KINDS[section], type_id)  # type: ignore[arg-type]
    except Exception:  # a connector that does not import: the reference check says so
        return ()
    return path_fields(component.config) if component is not None else ()


def resolve_paths(
    data: dict[str, Any], directory: str | None, from_caller: set[Path], cwd: str | None = None
) -> dict[str, Any]:
    """``data`` (not modified) with the relative paths of its configs made absolute.

    ``directory``: the integration file's directory (``None``: text not read from a file,
    whose paths stay as written); ``from_caller``: paths of the values that start with a
    value the caller gave (:attr:`meshline.spec.Interpolated.from_caller`); ``cwd``: the
    directory those are read against (default: the current one).
    """
    spec = data.get("spec")
    if directory is None or not isinstance(spec, dict):
        return data
    here = cwd or os.getcwd()
    new_spec = dict(spec)
    for section in _KINDS:
        items = spec.get(section)
        if not isinstance(items, list):
            continue
        new_items: list[Any] = []
        for i, item in enumerate(items):
            fields = _fields(section, item.get("type")) if isinstance(item, dict) else ()
            config = item.get("config") if isinstance(item, dict) else None
            if not fields or not isinstance(config, dict):
                new_items.append(item)
                continue
            config = _copy_path(config, fields)
            for dotted in fields:
                keys = dotted.split(".")
                parent: Any = config
                for key in keys[:-1]:
                    parent = parent.get(key) if isinstance(parent, dict) else None
                if not isinstance(parent, dict) or keys[-1] not in parent:
                    continue
                value = parent[keys[-1]]
                if isinstance(value, Secret):
                    continue  # a path given as a secret is used as it is
                where: Path = ("spec", section, i, "config", *keys)
                parent[keys[-1]] = _resolve(value, here if where in from_caller else directory)
            new_items.append({**item, "config": config})
        new_spec[section] = new_items
    return {**data, "spec": new_spec}


def _copy_path(config: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """A copy of ``config`` whose mappings on the way to each field are copies too."""
    out = dict(config)
    for dotted in fields:
        keys = dotted.split(".")
        parent = out
        for key in keys[:-1]:
            child = parent.get(key)
            if not isinstance(child, dict):
                break
            parent[key] = dict(child)
            parent = parent[key]
    return out
