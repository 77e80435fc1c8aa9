"""``meshline graph``: an integration drawn as mermaid or Graphviz dot (svg/png via ``dot``).

Nodes show names, connector types, filters and steps; never config values, so
no secret can reach a picture (labels also pass through the file's redactor).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from meshline.errors import MeshlineError

if TYPE_CHECKING:
    from meshline.spec.model import Integration

__all__ = ["EXTENSIONS", "FORMATS", "format_for_path", "render_graph", "to_dot", "to_mermaid"]

FORMATS = ("mermaid", "dot", "svg", "png")
#: ``meshline graph -o FILE`` without ``--format``: the format from the file's extension.
EXTENSIONS = {".mmd": "mermaid", ".md": "mermaid", ".dot": "dot", ".gv": "dot", ".svg": "svg", ".png": "png"}


def format_for_path(path: str) -> str | None:
    """The format an output file's extension names (``g.png`` → ``png``), or ``None``."""
    return EXTENSIONS.get(os.path.splitext(path)[1].lower())


def _filter_text(f: dict[str, Any], redact: Callable[[str], str]) -> str:
    ((dialect, arg),) = f.items()
    if isinstance(arg, str):
        text = f"{dialect}: {arg}"
    else:
        text = f"{dialect}: {json.dumps(arg, separators=(',', ':'))}"
    text = redact(text)  # before shortening, so no part of a secret survives
    return text if len(text) <= 60 else text[:57] + "..."


def _model(integration: Integration) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str, bool]]]:
    """Nodes ``(id, label, shape)`` and edges ``(from, to, label, dashed)``."""
    redact = integration.redactor.redact
    nodes: list[tuple[str, str, str]] = []
    edges: list[tuple[str, str, str, bool]] = []
    for s in integration.sources:
        nodes.append((f"src_{s.name}", f"{s.name}\\n({s.type})", "source"))
    for t in integration.targets:
        nodes.append((f"tgt_{t.name}", f"{t.name}\\n({t.type})", "target"))
    for trig in integration.triggers:
        lines = [trig.name, *(_filter_text(f, redact) for f in trig.filters)]
        if trig.steps:
            lines.append("steps: " + " → ".join(trig.steps))
        nodes.append((f"trg_{trig.name}", "\\n".join(lines), "trigger"))
        for source in trig.sources:
            edges.append((f"src_{source}", f"trg_{trig.name}", "", False))
        edges.append((f"trg_{trig.name}", f"tgt_{trig.target}", "", False))
        if trig.delivery.dead_letter:
            edges.append((f"trg_{trig.name}", f"tgt_{trig.delivery.dead_letter}", "dead letters", True))
    return nodes, edges


def _safe(node_id: str) -> str:
    return "".join(c if c.isalnum() or c == "_" else "_" for c in node_id)


def to_mermaid(integrations: list[Any]) -> str:
    out = ["flowchart LR"]
    for integration in integrations:
        nodes, edges = _model(integration)
        out.append(f'  subgraph {_safe(integration.name)}["{integration.name}"]')
        for nid, label, shape in nodes:
            text = label.replace("\\n", "<br/>").replace('"', "'")
            nid = _safe(f"{integration.name}_{nid}")
            if shape == "source":
                out.append(f'    {nid}(["{text}"])')
            elif shape == "target":
                out.append(f'    {nid}[("{text}")]')
            else:
                out.append(f'    {nid}{{"{text}"}}')
        for a, b, label, dashed in edges:
            a, b = _safe(f"{integration.name}_{a}"), _safe(f"{integration.name}_{b}")
            arrow = "-.->" if dashed else "-->"
            out.append(f"    {a} {arrow}|{label}| {b}" if label else f"    {a} {arrow} {b}")
        out.append("  end")
    return "\n".join(out) + "\n"


def to_dot(integrations: list[Any]) -> str:
    shapes = {"source": "cds", "target": "cylinder", "trigger": "box"}
    out = ["digraph meshline {", "  rankdir=LR;", '  node [fontname="Helvetica"];']
    for integration in integrations:
        nodes, edges = _model(integration)
        out.append(f'  subgraph "cluster_{integration.name}" {{')
        out.append(f'    label="{integration.name}";')
        for nid, label, shape in nodes:
            text = label.replace('"', '\\"')
            out.append(f'    "{integration.name}_{nid}" [label="{text}", shape={shapes[shape]}];')
        for a, b, label, dashed in edges:
            style = ', style=dashed, color="#b00"' if dashed else ""
            lab = f'label="{label}"' if label else 'label=""'
            out.append(f'    "{integration.name}_{a}" -> "{integration.name}_{b}" [{lab}{style}];')
        out.append("  }")
    out.append("}")
    return "\n".join(out) + "\n"


def render_graph(integrations: list[Any], fmt: str) -> bytes:
    if fmt == "mermaid":
        return to_mermaid(integrations).encode()
    dot = to_dot(integrations)
    if fmt == "dot":
        return dot.encode()
    exe = shutil.which("dot")
    if exe is None:
        raise MeshlineError(f"--format {fmt} needs Graphviz's 'dot' on PATH (apt-get install graphviz)")
    proc = subprocess.run([exe, f"-T{fmt}"], input=dot.encode(), capture_output=True, check=False)
    if proc.returncode != 0:
        raise MeshlineError(f"dot failed: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout
