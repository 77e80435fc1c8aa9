"""The documentation is part of the product: README.md, CONTRIBUTING.md and docs/ are checked like code.

- links: every relative link and anchor resolves inside the repository; nothing points at
  the contract outside it (``SPEC.md`` and the folder beside the repository);
- coverage: every connector, transformation and filter dialect has its page, and the
  README's "Documentation" index links every page;
- generated sections (``make docs``) are current;
- examples: every YAML block is validated as ``meshline validate`` would (a fragment is
  first completed into a minimal integration, see :func:`complete`); blocks marked
  runnable run their ``tests:`` with the in-process test runner; shell blocks name only
  commands and flags the CLI parser knows and ``make`` targets the Makefile has; Python
  and JSON blocks compile.

A block's kind comes from an HTML comment on the line before it (invisible when rendered):

- ``<!-- example: runnable -->``: an integration (or fragment) whose ``tests:`` must pass;
- ``<!-- example: filter -->``: one filter, or a list of filters;
- ``<!-- example: invalid file=NAME -->``: must be refused; the next code block is the
  exact error ``meshline validate NAME`` prints;
- ``<!-- example: event -->``: one event in the CloudEvents JSON format;
- ``<!-- example: prometheus -->``: a Prometheus scrape configuration of Meshline's endpoint;
- ``<!-- example: triggermesh -->``: TriggerMesh/Knative manifests the importer converts
  into a valid integration;
- ``<!-- example: params param:NAME=VALUE … -->``: validated as
  ``meshline validate --param NAME=VALUE`` (any kind may add ``param:`` values).

Without a comment a YAML block is an integration (it has ``apiVersion``) or a fragment of
``spec`` (keys such as ``sources``, ``triggers``, ``tests``, or ``spec:`` around them); a
YAML block included from
``pipelines/`` by ``make docs`` is runnable.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import re
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshline import docgen, registry
from meshline.errors import SpecError
from meshline.spec import load_text
from meshline.spec.schema import API_VERSION, DIALECTS, KIND

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").rglob("*.md"))]

_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
_MARKER = re.compile(r"^<!--\s*example:\s*(?P<kind>[\w-]+)(?P<args>.*?)\s*-->$")
_LINK = re.compile(
    r"(?<!\\)!?\[(?P<text>(?:[^\[\]]|\[[^\]]*\])*)\]\((?P<target><[^>]*>|[^)\s]*)(?:\s+\"[^\"]*\")?\)"
)
_HEADING = re.compile(r"^(#{1,6})\s+(?P<text>.+?)\s*#*\s*$")
_HTML_ANCHOR = re.compile(r"<a\s+(?:id|name)=\"([^\"]+)\"")
_INCLUDE = re.compile(r"<!-- BEGIN GENERATED: include (?P<path>\S+)")
_SPEC_KEYS = {
    "parameters",
    "sources",
    "transformations",
    "targets",
    "triggers",
    "deadLetter",
    "tests",
    "execution",
}
_SHELLS = {"sh", "bash", "shell", "console"}


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


# --------------------------------------------------------------------------- markdown


@dataclass
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    lang: str
    text: str
    marker: str | None = None  # the example kind
    args: str = ""
    included: str | None = None  # the pipelines/ file a generated include holds

    @property
    def where(self) -> str:
        return f"{_rel(self.page)}:{self.line}"


def _parse(page: Path) -> tuple[list[Block], list[tuple[int, str]]]:
    """The fenced code blocks of a page, and its prose lines (outside code) with numbers."""
    blocks: list[Block] = []
    prose: list[tuple[int, str]] = []
    lines = page.read_text(encoding="utf-8").splitlines()
    i = 0
    previous = ""  # the last non-blank prose line
    included: str | None = None
    while i < len(lines):
        line = lines[i]
        m = _FENCE.match(line)
        if m is None:
            prose.append((i + 1, line))
            inc = _INCLUDE.match(line.strip())
            if inc:
                included = inc.group("path")
            elif line.strip() == docgen.END:
                included = None
            if line.strip():
                previous = line.strip()
            i += 1
            continue
        fence = m.group("fence")
        start = i
        body: list[str] = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i])
            i += 1
        i += 1  # the closing fence
        marker = _MARKER.match(previous)
        lang = (m.group("info").strip().split() or [""])[0].lower()
        blocks.append(
            Block(
                page,
                start + 1,
                lang,
                "\n".join(body) + "\n",
                marker.group("kind") if marker else None,
                marker.group("args").strip() if marker else "",
                included,
            )
        )
        previous = ""
    return blocks, prose


def _without_code_spans(line: str) -> str:
    return re.sub(r"(`+)(?:(?!\1).)+\1", "", line)


def anchors(page: Path) -> set[str]:
    """The anchors GitHub gives the headings of a page (plus explicit ``<a id>``)."""
    _, prose = _parse(page)
    seen: dict[str, int] = {}
    out: set[str] = set()
    for _, line in prose:
        out.update(_HTML_ANCHOR.findall(line))
        m = _HEADING.match(line)
        if not m:
            continue
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", m.group("text")).replace("`", "")
        slug = re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def _links(page: Path) -> list[tuple[int, str]]:
    _, prose = _parse(page)
    return [
        (number, m.group("target").strip("<>"))
        for number, line in prose
        for m in _LINK.finditer(_without_code_spans(line))
    ]


def _all_blocks() -> list[Block]:
    return [b for page in PAGES for b in _parse(page)[0]]


# --------------------------------------------------------------------------- links


def test_every_relative_link_and_anchor_resolves_inside_the_repository() -> None:
    problems = []
    cache: dict[Path, set[str]] = {}
    for page in PAGES:
        for number, target in _links(page):
            where = f"{_rel(page)}:{number}: {target}"
            if re.match(r"^(https?|mailto):", target):
                continue
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):
                problems.append(f"{where}: not a link a reader can follow (scheme)")
                continue
            path, _, anchor = target.partition("#")
            resolved = (page.parent / path).resolve() if path else page
            if ROOT not in resolved.parents and resolved != ROOT:
                problems.append(f"{where}: points outside the repository")
                continue
            if not resolved.exists():
                problems.append(f"{where}: no such file")
                continue
            if anchor:
                if resolved.suffix != ".md":
                    problems.append(f"{where}: an anchor into a file that is not a page")
                    continue
                known = cache.setdefault(resolved, anchors(resolved))
                if anchor not in known:
                    problems.append(f"{where}: no heading #{anchor} in {_rel(resolved)}")
    assert not problems, "dead links:\n" + "\n".join(problems)


#: How a page would point at the contract the project was built from, which lives beside the
#: repository and not in a user's clone. This test reads nothing there; it only makes sure no
#: page sends a reader there.
_OUTSIDE = ("SPEC.md", "SPEC §", "/".join(("..", "shared")), "/".join(("", "work", "shared")))


def test_nothing_points_at_the_contract_outside_the_repository() -> None:
    problems = []
    for page in PAGES:
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            for bad in _OUTSIDE:
                if bad in line:
                    problems.append(f"{_rel(page)}:{number}: mentions {bad!r}: link a page of docs/ instead")
    assert not problems, "\n".join(problems)


def test_the_link_checker_finds_dead_links_and_anchors(tmp_path: Path) -> None:
    page = tmp_path / "p.md"
    page.write_text("# Title\n\n## A `b` (c) > d\n\n[x](#a-b-c--d) [y](#nope) `[z](#in-code)`\n")
    assert anchors(page) == {"title", "a-b-c--d"}
    assert [t for _, t in _links(page)] == ["#a-b-c--d", "#nope"]


# --------------------------------------------------------------------------- coverage


def test_every_component_has_its_page_with_a_generated_section() -> None:
    problems = []
    for kind in ("source", "target", "transformation"):
        folder = "transformations" if kind == "transformation" else "connectors"
        for type_id in registry.ids(kind):
            page = ROOT / "docs" / "reference" / folder / f"{type_id}.md"
            if not page.exists():
                problems.append(f"{kind} {type_id}: no page {_rel(page)} (run `make docs`)")
            elif f"BEGIN GENERATED: {kind} {type_id};" not in page.read_text(encoding="utf-8"):
                problems.append(f"{kind} {type_id}: {_rel(page)} has no generated section (run `make docs`)")
    assert not problems, "\n".join(problems)


def test_every_filter_dialect_has_a_section() -> None:
    page = ROOT / "docs" / "filters.md"
    missing = [d for d in DIALECTS if d not in anchors(page)]
    assert not missing, f"docs/filters.md has no section (## `{missing[0]}`) for {missing}"


def test_the_readme_links_every_page() -> None:
    linked = {
        (ROOT / target.partition("#")[0]).resolve()
        for _, target in _links(ROOT / "README.md")
        if not re.match(r"^[a-z]+:", target)
    }
    missing = [_rel(p) for p in PAGES[1:] if p.resolve() not in linked]
    assert not missing, f"README.md's Documentation index does not link: {', '.join(missing)}"


# --------------------------------------------------------------------------- generated


def test_generated_sections_are_current() -> None:
    result = docgen.generate(ROOT)
    problems = result.problems + result.stale(ROOT)
    assert not problems, "stale documentation, run `make docs`:\n" + "\n".join(problems)


def test_a_stale_page_is_noticed_and_make_docs_is_idempotent(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    shutil.copytree(ROOT / "pipelines", tmp_path / "pipelines")
    page = tmp_path / "docs" / "reference" / "connectors" / "file.md"
    text = page.read_text(encoding="utf-8")
    page.write_text(text.replace("| `path` |", "| `old_path` |", 1), encoding="utf-8")
    (tmp_path / "docs" / "reference" / "transformations" / "jq.md").unlink()
    assert docgen.generate(tmp_path).stale(tmp_path) == [
        "docs/reference/connectors/file.md: stale",
        "docs/reference/transformations/jq.md: missing",
    ]
    assert docgen.main(["--check", "--root", str(tmp_path)]) == 1
    with contextlib.redirect_stdout(io.StringIO()):
        assert docgen.main(["--root", str(tmp_path)]) == 0
    assert page.read_text(encoding="utf-8") == text
    assert docgen.generate(tmp_path).stale(tmp_path) == []


# --------------------------------------------------------------------------- examples


def _names(items: Any) -> list[str]:
    return [i["name"] for i in items or [] if isinstance(i, dict) and isinstance(i.get("name"), str)]


def complete(fragment: dict[str, Any]) -> dict[str, Any]:
    """A minimal integration around a fragment of ``spec``.

    Names the fragment refers to but does not declare become stubs (a ``file`` source, a
    ``log`` target, a ``jq`` step that changes nothing), as do parameters it uses (required,
    so their values are placeholders as in ``meshline validate``); with no
    trigger, one takes every source through every step to the first target.
    """
    spec = copy.deepcopy(fragment)
    triggers = spec.get("triggers") or []
    tests = spec.get("tests") or []
    wanted = {
        "sources": [s for t in triggers for s in t.get("sources") or []]
        + [s for case in tests for s in case.get("inputs") or {}],
        "targets": [t.get("target") for t in triggers]
        + [(t.get("delivery") or {}).get("deadLetter") for t in triggers]
        + [spec.get("deadLetter")]
        + [s for case in tests for s in case.get("expect") or {}],
        "transformations": [s for t in triggers for s in t.get("steps") or []],
    }
    stubs = {
        "sources": lambda n: {"name": n, "type": "file", "config": {"path": "in.jsonl"}},
        "targets": lambda n: {"name": n, "type": "log"},
        "transformations": lambda n: {"name": n, "type": "jq", "config": {"program": "."}},
    }
    for section, names in wanted.items():
        declared = _names(spec.get(section))
        for name in dict.fromkeys(n for n in names if isinstance(n, str)):
            if name not in declared:
                spec.setdefault(section, []).append(stubs[section](name))
    if not spec.get("sources"):
        spec["sources"] = [stubs["sources"]("in")]
    if not spec.get("targets"):
        spec["targets"] = [stubs["targets"]("out")]
    if not spec.get("triggers"):
        spec["triggers"] = [
            {"name": "t", "steps": _names(spec.get("transformations")), "target": _names(spec["targets"])[0]}
        ]
    declared = set(_names(spec.get("parameters")))
    used = re.findall(r"\$\{params\.([A-Za-z0-9_]+)\}", json.dumps(spec))
    for name in dict.fromkeys(used):
        if name not in declared:
            spec.setdefault("parameters", []).append({"name": name, "required": True})
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": {"name": "docs-example"}, "spec": spec}


def _integration_text(block: Block) -> str:
    """The block as a whole integration file (fragments completed)."""
    docs = [d for d in yaml.safe_load_all(block.text) if d is not None]
    assert docs, f"{block.where}: an empty YAML block"
    if block.marker == "filter":
        (value,) = docs
        filters = value if isinstance(value, list) else [value]
        return yaml.safe_dump(complete({"triggers": [{"name": "t", "filters": filters, "target": "out"}]}))
    if all(isinstance(d, dict) and "apiVersion" in d for d in docs):
        return block.text
    if len(docs) == 1 and isinstance(docs[0], dict) and set(docs[0]) == {"spec"}:
        docs = [docs[0]["spec"]]  # `spec:` and a fragment of it
    if len(docs) == 1 and isinstance(docs[0], dict) and set(docs[0]) <= _SPEC_KEYS:
        return yaml.safe_dump(complete(docs[0]), sort_keys=False)
    raise AssertionError(
        f"{block.where}: a YAML block that is neither an integration nor a fragment of spec "
        f"(keys {sorted(docs[0]) if isinstance(docs[0], dict) else type(docs[0]).__name__}); "
        "mark it <!-- example: KIND --> (see tests/unit/test_docs.py)"
    )


def _params(block: Block) -> dict[str, str]:
    pairs = [a.removeprefix("param:").split("=", 1) for a in block.args.split() if a.startswith("param:")]
    return {name: value for name, value in pairs}


def _load(block: Block, filename: str | None = None) -> Any:
    text = _integration_text(block)
    return load_text(text, filename or block.where, params=_params(block), env={}, strict=False)


_YAML = [b for b in _all_blocks() if b.lang in ("yaml", "yml")]
_RUNNABLE = [b for b in _YAML if b.marker == "runnable" or (b.included or "").startswith("pipelines/")]


@pytest.mark.parametrize("block", [b for b in _YAML if b not in _RUNNABLE], ids=lambda b: b.where)
def test_yaml_example_is_valid(block: Block) -> None:
    if block.marker == "triggermesh":
        from meshline.importer.triggermesh import convert

        docs = [(block.where, d) for d in yaml.safe_load_all(block.text) if d]
        result = convert(docs, name="docs-example")
        assert result.error is None, f"{block.where}: {result.error}"
        load_text(result.to_yaml(), block.where, env={}, strict=False)
        return
    if block.marker == "prometheus":
        config = yaml.safe_load(block.text)
        for job in config["scrape_configs"]:
            assert job["job_name"] and job.get("metrics_path", "/metrics") == "/metrics", block.where
            for static in job["static_configs"]:
                assert all(re.fullmatch(r"127\.0\.0\.1:\d+", t) for t in static["targets"]), block.where
        return
    if block.marker == "event":
        from meshline.events import from_json_dict

        from_json_dict(yaml.safe_load(block.text))
        return
    if block.marker == "invalid":
        (filename,) = [a.removeprefix("file=") for a in block.args.split() if a.startswith("file=")]
        with pytest.raises(SpecError) as caught:
            _load(block, filename)
        blocks = _parse(block.page)[0]
        shown = blocks[blocks.index(block) + 1]
        assert str(caught.value).strip() == shown.text.strip(), (
            f"{shown.where}: the error shown differs from what meshline prints:\n{caught.value}"
        )
        return
    try:
        _load(block)
    except SpecError as e:
        raise AssertionError(f"{block.where}: the example is not valid:\n{e}") from None


@pytest.mark.parametrize("block", _RUNNABLE, ids=lambda b: b.where)
def test_runnable_example_passes_its_tests(block: Block) -> None:
    from meshline.compiler.testing import run_tests

    integrations = _load(block).integrations
    assert any(i.tests for i in integrations), f"{block.where}: marked runnable but has no tests:"
    failures = [
        f"{i.name}: {case.name}: " + "; ".join(case.problems)
        for i in integrations
        for case in run_tests(i)
        if not case.passed
    ]
    assert not failures, f"{block.where}:\n" + "\n".join(failures)


def _commands(text: str) -> list[list[str]]:
    joined = re.sub(r"\\\n\s*", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip().removeprefix("$ ")
        for part in re.split(r"\s(?:&&|\|\||\||;)\s", line):
            try:
                words = shlex.split(part, comments=True)
            except ValueError:
                continue
            while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):
                words = words[1:]
            redirected = [i for i, w in enumerate(words) if re.match(r"^\d?[<>]", w)]
            if redirected:  # `meshline schema > FILE`: the shell's, not the command's
                words = words[: redirected[0]]
            if words:
                out.append(words)
    return out


def _make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([A-Za-z][\w-]*):", text, re.M))


def _cli_problem(words: list[str]) -> str | None:
    from meshline.cli import _parser

    args = words[1:]
    if "--" in args:
        args = args[: args.index("--")]
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            _parser().parse_args(args)
    except SystemExit as e:
        if e.code not in (0, None):
            return err.getvalue().strip().splitlines()[-1]
    return None


@pytest.mark.parametrize("block", [b for b in _all_blocks() if b.lang in _SHELLS], ids=lambda b: b.where)
def test_shell_example_uses_real_commands_and_flags(block: Block) -> None:
    problems = []
    for words in _commands(block.text):
        program = Path(words[0]).name
        if program == "meshline":
            problem = _cli_problem(words)
            if problem:
                problems.append(f"{' '.join(words)}: {problem}")
        elif program == "make":
            problems += [f"make {t}: no such target" for t in words[1:] if t not in _make_targets()]
    assert not problems, f"{block.where}:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    "block", [b for b in _all_blocks() if b.lang in ("python", "json")], ids=lambda b: b.where
)
def test_python_and_json_examples_parse(block: Block) -> None:
    if block.lang == "python":
        compile(block.text, block.where, "exec")
        return
    value = json.loads(block.text)
    if block.marker == "event":
        from meshline.events import from_json_dict

        from_json_dict(value)


def test_the_example_checks_can_fail(tmp_path: Path) -> None:
    page = tmp_path / "p.md"
    page.write_text(
        '<!-- example: filter -->\n```yaml\n{cesql: "type = "}\n```\n\n'
        "```yaml\nsources: [{name: s, type: nope}]\n```\n\n"
        "```sh\nmeshline run x.yaml --no-such-flag\nmake no-such-target\n```\n"
    )
    filter_block, fragment, shell = _parse(page)[0]
    with pytest.raises(SpecError, match="invalid CESQL"):
        _load(filter_block)
    with pytest.raises(SpecError, match="unknown source type 'nope'"):
        _load(fragment)
    with pytest.raises(AssertionError, match="unrecognized arguments: --no-such-flag"):
        test_shell_example_uses_real_commands_and_flags(shell)
    with pytest.raises(AssertionError, match="make no-such-target: no such target"):
        test_shell_example_uses_real_commands_and_flags(shell)
