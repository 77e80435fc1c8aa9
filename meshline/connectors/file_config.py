"""``file`` source and target: configs and declarations (Beam transforms: :mod:`meshline.connectors.file`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from meshline.config import doc
from meshline.connectors.late import Late
from meshline.connectors.objects_config import ObjectTargetFields
from meshline.registry import Component

__all__ = ["LINE_TYPE", "SOURCE", "TARGET", "FileSourceConfig", "FileTargetConfig"]

LINE_TYPE = "dev.meshline.file.line"


@dataclass(frozen=True, kw_only=True)
class FileSourceConfig:
    """Read events from files: local paths, globs, or any Beam filesystem URL."""

    path: str = doc("a file, a glob (data/*.jsonl) or a filesystem URL (gs://bucket/dir/*.jsonl)", path=True)
    format: Literal["cloudevents", "lines"] = doc(
        "'cloudevents': one JSON CloudEvent per line; 'lines': each line becomes an event", "cloudevents"
    )
    type: str = doc("event type for 'lines'", LINE_TYPE)
    allow_empty: bool = doc(
        "a path that matches no file reads nothing instead of stopping the run with an error", False
    )

    def __post_init__(self) -> None:
        if not self.path.strip():
            raise ValueError("path: must not be empty")


@dataclass(frozen=True, kw_only=True)
class _FileTargetPath:
    path: str = doc("directory or URL prefix; may use {yyyy}/{mm}/{dd}/{HH} and {type}", path=True)


@dataclass(frozen=True, kw_only=True)
class FileTargetConfig(ObjectTargetFields, _FileTargetPath):
    """Write events to files under a directory (local or any Beam filesystem URL)."""

    def __post_init__(self) -> None:
        if not self.path.strip():
            raise ValueError("path: must not be empty")
        self._check_object_fields()


SOURCE = Component(
    id="file",
    kind="source",
    config=FileSourceConfig,
    build=Late("meshline.connectors.file:build_source"),
    description="Events from files: JSON CloudEvents one per line, or raw lines.",
    preflight=Late("meshline.connectors.file:preflight"),
)

TARGET = Component(
    id="file",
    kind="target",
    config=FileTargetConfig,
    build=Late("meshline.connectors.file:build_target"),
    description="Files under a directory: jsonl, avro or parquet, with path templates and windows.",
    batches=True,
)
