"""Path templates for object-store targets (SPEC §7): ``{yyyy}/{mm}/{dd}/{HH}`` and ``{type}``.

The time placeholders take the event's ``time`` attribute (UTC), else the start of
the element's window, else the time of writing. ``{type}`` is the event type with
characters that are unsafe in object names replaced by ``_``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

from meshline.events import CloudEvent

__all__ = ["PathTemplate"]

_PLACEHOLDER = re.compile(r"\{(yyyy|mm|dd|HH|type)\}")
_UNSAFE = re.compile(r"[^A-Za-z0-9._=-]")


def _utc_fields(value: object, fallback: dt.datetime) -> tuple[str, str, str, str]:
    if isinstance(value, str) and len(value) >= 13:
        if value.endswith("Z") or value.endswith("+00:00"):
            # RFC 3339 in UTC: the fields are where they are; no parsing needed.
            return value[0:4], value[5:7], value[8:10], value[11:13]
        try:
            t = dt.datetime.fromisoformat(value)
            if t.tzinfo is not None:
                t = t.astimezone(dt.UTC)
            return f"{t.year:04d}", f"{t.month:02d}", f"{t.day:02d}", f"{t.hour:02d}"
        except ValueError:
            pass
    t = fallback
    return f"{t.year:04d}", f"{t.month:02d}", f"{t.day:02d}", f"{t.hour:02d}"


class PathTemplate:
    """Renders the directory part of an object name for one event."""

    def __init__(self, template: str):
        self.template = template.strip("/")
        self.is_constant = not _PLACEHOLDER.search(self.template)
        self.uses_time = any(p in self.template for p in ("{yyyy}", "{mm}", "{dd}", "{HH}"))

    def renderer(self) -> Callable[[CloudEvent, dt.datetime | None], str]:
        template = self.template
        if self.is_constant:

            def constant(event: CloudEvent, when: dt.datetime | None = None) -> str:
                return template

            return constant
        uses_time = self.uses_time

        def render(event: CloudEvent, when: dt.datetime | None = None) -> str:
            values: dict[str, str] = {}
            if uses_time:
                fallback = when or dt.datetime.now(dt.UTC)
                y, m, d, h = _utc_fields(event.attributes.get("time"), fallback)
                values.update(yyyy=y, mm=m, dd=d, HH=h)
            values["type"] = _UNSAFE.sub("_", str(event.attributes.get("type", "")))
            return _PLACEHOLDER.sub(lambda mo: values[mo.group(1)], template)

        return render
