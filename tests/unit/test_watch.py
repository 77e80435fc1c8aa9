"""``--watch``: the files an integration reads, and noticing when one changes."""

from __future__ import annotations

import os
import sys
import threading

from meshline.spec import load_text
from meshline.watch import snapshot, wait_for_change, watched_files

FILE = """\
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {name: w}
spec:
  sources:
    - {name: orders, type: file, config: {path: "data/*.jsonl"}}
  transformations:
    - {name: py, type: python, config: {function: "shop_steps:handle"}}
    - {name: style, type: xslt, config: {stylesheet: "style.xsl"}}
  targets:
    - {name: out, type: file, config: {path: "out"}}
  triggers:
    - {name: all, steps: [py, style], target: out}
"""


def test_the_file_its_inputs_python_module_and_stylesheet_are_watched(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.jsonl").write_text("{}\n")
    (tmp_path / "data" / "notes.txt").write_text("not matched by the glob\n")
    (tmp_path / "shop_steps.py").write_text("def handle(event):\n    return event\n")
    (tmp_path / "style.xsl").write_text(
        '<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"/>'
    )
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "part-1.jsonl").write_text("{}\n")  # outputs are never watched
    f = tmp_path / "w.yaml"
    f.write_text(FILE)
    integrations = load_text(FILE, str(f), strict=False).integrations
    watched = watched_files([str(f)], integrations)
    assert watched == sorted(
        str(tmp_path / p) for p in ("w.yaml", "data/a.jsonl", "shop_steps.py", "style.xsl")
    )
    (tmp_path / "data" / "b.jsonl").write_text("{}\n")  # a new input the glob matches
    assert str(tmp_path / "data" / "b.jsonl") in watched_files([str(f)], integrations)
    sys.modules.pop("shop_steps", None)


def test_wait_for_change_returns_the_changed_file(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("1")
    b.write_text("1")
    paths = [str(a), str(b)]
    before = snapshot(paths)
    stop = threading.Event()
    got: list[list[str]] = []
    t = threading.Thread(target=lambda: got.append(wait_for_change(lambda: paths, before, stop, poll=0.05)))
    t.start()
    b.write_text("22")
    t.join(timeout=30)
    assert got == [[str(b)]]
    # a file that disappears is a change too; a stop ends the wait with nothing
    before = snapshot(paths)
    os.remove(a)
    assert wait_for_change(lambda: paths, before, poll=0.05) == [str(a)]
    stop.set()
    assert wait_for_change(lambda: paths, snapshot(paths), stop, poll=0.05) == []
