"""``--watch``: which files an integration depends on, and waiting until one of them changes.

No file-system notification library: the files are few, so their modification
times and sizes are polled (twice a second). Watched: the integration files
themselves; for every source and transformation, each config string that names
an existing local file or a glob matching some (``file`` source paths, XSLT
stylesheets, key files …); and the module file of a ``python`` step's
``function: pkg.module:callable`` when it is found on ``sys.path``. Target paths
are never watched: a run writes there. A relative path counts from the current
directory and from the integration file's directory.
"""

from __future__ import annotations

import glob
import importlib.util
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from meshline.spec.model import Integration

__all__ = ["Snapshot", "Watch", "changed_files", "snapshot", "wait_for_change", "watched_files", "watching"]

#: Seconds between two looks at the files.
POLL = 0.5
#: A change is acted on once the files have stayed the same this long (editors write in steps).
SETTLE = 0.2

Snapshot = dict[str, tuple[int, int]]


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _local_files(text: str, bases: list[Path]) -> list[str]:
    if not text or "\n" in text or "://" in text or len(text) > 4096 or text.lstrip().startswith("<"):
        return []
    found: list[str] = []
    for base in bases:
        candidate = Path(text).expanduser()
        if not candidate.is_absolute():
            candidate = base / candidate
        if any(c in text for c in "*?["):
            found.extend(p for p in glob.glob(str(candidate)) if os.path.isfile(p))
        elif candidate.is_file():
            found.append(str(candidate))
    return found


def _module_file(function: str) -> str | None:
    module = function.partition(":")[0].strip()
    if not module:
        return None
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError, AttributeError):
        return None
    origin = getattr(spec, "origin", None) if spec is not None else None
    return origin if origin and os.path.isfile(origin) else None


def watched_files(files: Iterable[str], integrations: Iterable[Any]) -> list[str]:
    """The integration files plus what their sources and steps read (see the module docstring)."""
    out = {os.path.abspath(f) for f in files}
    for integration in integrations:
        bases = [Path.cwd(), Path(getattr(integration, "file", ".")).resolve().parent]
        for decl in (*integration.sources, *integration.transformations):
            config = decl.config or {}
            for text in _strings(config):
                out.update(os.path.abspath(p) for p in _local_files(str(text), bases))
            if decl.type == "python" and isinstance(config.get("function"), str):
                module = _module_file(config["function"])
                if module:
                    out.add(os.path.abspath(module))
    return sorted(out)


def snapshot(paths: Iterable[str]) -> Snapshot:
    """Modification time and size of each path (a missing one is ``(0, -1)``)."""
    out: Snapshot = {}
    for p in paths:
        try:
            st = os.stat(p)
            out[p] = (st.st_mtime_ns, st.st_size)
        except OSError:
            out[p] = (0, -1)
    return out


def changed_files(before: Snapshot, after: Snapshot) -> list[str]:
    return sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))


def wait_for_change(
    paths: Callable[[], list[str]],
    before: Snapshot,
    stop: threading.Event | None = None,
    poll: float = POLL,
) -> list[str]:
    """Block until one of ``paths()`` differs from ``before``; the changed paths (``[]`` if stopped)."""
    stop = stop or threading.Event()
    while not stop.wait(poll):
        now = snapshot(paths())
        changed = changed_files(before, now)
        if not changed:
            continue
        while True:  # let the writer finish
            time.sleep(SETTLE)
            later = snapshot(paths())
            if later == now:
                return changed
            now = later
    return []


class Watch:
    """``--watch`` during one run: a thread cancels the job when a watched file changes."""

    def __init__(self, paths: Callable[[], list[str]], before: dict[str, tuple[int, int]]):
        self._paths = paths
        self._before = before
        self._stop = threading.Event()
        self.restarting = False
        self.changed: list[str] = []

    def started(self, run: Any) -> None:
        def watch() -> None:
            changed = wait_for_change(self._paths, self._before, self._stop)
            if changed and not self._stop.is_set():
                self.changed = changed
                self.restarting = True
                # Prism logs the cancelled bundle as an error; here it is what was asked for
                logging.getLogger("PrismRunner").setLevel(logging.CRITICAL)
                try:
                    run.cancel()
                except Exception:  # already finished
                    pass

        threading.Thread(target=watch, name="meshline-watch", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()


def watching(
    files: list[str], load: Callable[[str], Iterable[Integration]], once: Callable[[Watch], int]
) -> int:
    """Run ``once`` again whenever the files, or what they read, change; until Ctrl-C.

    ``load(file)``: the integrations of a file (to know what they read); ``once(watch)``:
    one run or test of every file (``meshline run --watch``, ``meshline test --watch``).
    """
    from meshline.errors import MeshlineError
    from meshline.run import say

    while True:
        try:
            loaded = [i for f in files for i in load(f)]
        except MeshlineError:
            loaded = []  # ``once`` reports the problem; watch the files themselves

        def paths(loaded: list[Any] = loaded) -> list[str]:
            return watched_files(files, loaded)

        before = snapshot(paths())
        watch = Watch(paths, before)
        try:
            once(watch)
        except MeshlineError as e:
            from meshline.secrets import mask

            print(mask(str(e)), file=sys.stderr)
        finally:
            watch.stop()
            logging.getLogger("PrismRunner").setLevel(logging.WARNING)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C ends the watch at once
        changed = watch.changed
        if not watch.restarting:
            say(f"watching {len(before)} file(s) for changes; Ctrl-C to stop")
            changed = wait_for_change(paths, before)
        shown = ", ".join(os.path.relpath(p) for p in changed[:5]) + (" …" if len(changed) > 5 else "")
        say(f"changed: {shown}; running again")
