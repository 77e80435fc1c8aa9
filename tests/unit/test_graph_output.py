"""``meshline graph -o FILE``: the format follows the file's extension unless --format says otherwise."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from meshline.cli import main

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = str(ROOT / "pipelines" / "quickstart.yaml")


@pytest.mark.parametrize(
    ("name", "starts"),
    [
        ("g.mmd", b"flowchart LR"),
        ("g.md", b"```mermaid\nflowchart LR"),
        ("g.dot", b"digraph"),
        ("g.GV", b"digraph"),
    ],
)
def test_the_extension_names_the_format(tmp_path: Path, name: str, starts: bytes):
    out = tmp_path / name
    assert main(["graph", QUICKSTART, "-o", str(out)]) == 0
    assert out.read_bytes().startswith(starts)


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
@pytest.mark.parametrize(("name", "magic"), [("g.png", b"\x89PNG\r\n\x1a\n"), ("g.svg", b"<svg")])
def test_png_and_svg_are_pictures(tmp_path: Path, name: str, magic: bytes):
    out = tmp_path / name
    assert main(["graph", QUICKSTART, "-o", str(out)]) == 0
    assert magic in out.read_bytes()[:400]


def test_a_picture_without_graphviz_is_refused_and_nothing_is_written(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot on it
    out = tmp_path / "g.png"
    assert main(["graph", QUICKSTART, "-o", str(out)]) == 1
    assert "Graphviz" in capsys.readouterr().err
    assert not out.exists()


def test_an_unknown_extension_without_format_is_a_usage_error(tmp_path: Path, capsys):
    out = tmp_path / "g.jpeg"
    assert main(["graph", QUICKSTART, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "g.jpeg" in err and "--format" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_format_wins_over_the_extension(tmp_path: Path):
    out = tmp_path / "g.txt"
    assert main(["graph", QUICKSTART, "--format", "dot", "-o", str(out)]) == 0
    assert out.read_bytes().startswith(b"digraph")


def test_stdout_is_mermaid_by_default(capsysbinary):
    assert main(["graph", QUICKSTART]) == 0
    assert capsysbinary.readouterr().out.startswith(b"flowchart LR")
