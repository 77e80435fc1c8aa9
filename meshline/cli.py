"""The ``meshline`` command line (SPEC §8).

Exit statuses: 0 success; 1 an invalid file, a failed test or a failed run;
2 a usage error. A user mistake prints one line per problem on stderr and never
a traceback (``MESHLINE_DEBUG=1`` shows tracebacks for bug reports).

Commands that run no pipeline (``--help``, ``--version``, ``validate``,
``connectors``, ``schema``, ``graph``, ``import``, ``completion``) never import
Apache Beam: every import of a heavy module is inside the command that needs it
(``tests/unit/test_cli_light.py`` checks it). ``--format json`` output shapes are
documented in ``docs/cli.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from meshline.errors import MeshlineError, SpecError
from meshline.runners.guard import quiet_worker_tracebacks, silence_runner_threads

if TYPE_CHECKING:
    from meshline.compiler.testing import CaseResult
    from meshline.reports import FileReport, TestRecord
    from meshline.run import Stopper
    from meshline.spec.loader import LoadResult
    from meshline.spec.model import Integration, TestCase
    from meshline.spec.resolve import ResolvedIntegration
    from meshline.watch import Watch

__all__ = ["main"]

_LOGGER = logging.getLogger("meshline")


class _Usage(Exception):
    pass


def _quiet_beam_logging() -> None:
    debug = bool(os.environ.get("MESHLINE_DEBUG"))

    class _DropNoise(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            message = record.getMessage()
            if "apitools not found" in message:
                return False
            # A failed bundle on Prism or Flink comes back as job messages holding the worker's
            # traceback (logged by Beam on the root logger, and by Prism itself): the CLI says
            # what failed in one line (MESHLINE_DEBUG=1 keeps them).
            return debug or "Traceback (most recent call last)" not in message

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for h in logging.getLogger().handlers:
        h.addFilter(_DropNoise())
    logging.getLogger().addFilter(_DropNoise())
    # Beam logs a failed bundle with its traceback; the CLI reports the failure in one line itself.
    logging.getLogger("apache_beam").setLevel(logging.CRITICAL)
    logging.getLogger("PrismRunner").setLevel(logging.WARNING)


def _params(values: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for v in values:
        name, sep, value = v.partition("=")
        if not sep or not name:
            raise _Usage(f"--param expects NAME=VALUE, got {v!r}")
        out[name] = value
    return out


def _load(
    path: str, params: dict[str, str] | None = None, strict: bool = True, read_secrets: bool = False
) -> LoadResult:
    """Load a file; ``read_secrets``: read secret parameters given as Secret Manager versions here."""
    from meshline.secrets import read_secret_manager
    from meshline.spec import load_file

    reader = (lambda name: read_secret_manager(name, "a secret parameter")) if read_secrets else None
    return load_file(path, params=params or {}, env=os.environ, strict=strict, secret_manager=reader)


# --------------------------------------------------------------------------- commands


def _load_report(path: str, params: dict[str, str]) -> tuple[LoadResult | None, FileReport]:
    """``(LoadResult or None, FileReport)`` of one file, for ``validate`` and ``test``."""
    from meshline.errors import SpecError
    from meshline.reports import FileReport

    report = FileReport(path)
    try:
        result = _load(path, params, strict=False)
    except SpecError as e:
        report.problems = list(e.problems) + list(getattr(e, "warnings", []))
        return None, report
    except MeshlineError as e:
        from meshline.secrets import mask

        report.error = mask(" ".join(str(e).split()))
        return None, report
    report.problems = list(result.warnings)
    report.integrations = [i.name for i in result.integrations]
    return result, report


def _print_problems(report: FileReport) -> None:
    for p in sorted(report.problems, key=lambda p: (p.severity != "error", p.location.line, p.location.col)):
        print(str(p), file=sys.stderr)
    if report.error:
        print(report.error, file=sys.stderr)


def cmd_validate(args: argparse.Namespace) -> int:
    from meshline.reports import dumps, validate_json

    params = _params(args.param)
    reports = []
    for path in args.files:
        _, report = _load_report(path, params)
        reports.append(report)
        if args.format == "json":
            continue
        _print_problems(report)
        if report.valid:
            print(f"{path}: valid ({', '.join(report.integrations)})")
    if args.format == "json":
        print(dumps(validate_json(reports)))
    return 0 if all(r.valid for r in reports) else 1


def cmd_test(args: argparse.Namespace) -> int:
    if args.watch:
        return _watching(args, args.files, lambda _watch: _test_once(args))
    return _test_once(args)


def _test_once(args: argparse.Namespace) -> int:
    from meshline.compiler.testing import run_case, selected
    from meshline.reports import TestRecord, dumps, junit_xml, target_json, test_json

    text = args.format == "text"
    params = _params(args.param)
    records: list[TestRecord] = []
    reports = []
    for path in args.files:
        result, report = _load_report(path, params)
        reports.append(report)
        if text:
            _print_problems(report)
        else:  # errors are in the JSON report; warnings go to stderr
            _print_problems(replace(report, problems=[p for p in report.problems if p.severity != "error"]))
        if result is None:
            continue
        updates: list[Any] = []
        updated: list[TestRecord] = []
        for integration in result.integrations:
            if not integration.tests and text:
                print(f"{path}: {integration.name}: no tests")
            redact = integration.redactor.redact
            for index, case in enumerate(integration.tests):
                if not selected(integration, case, args.k):
                    continue
                r = run_case(integration, case)
                status = "passed" if r.passed else ("error" if r.error else "failed")
                record = TestRecord(
                    file=path,
                    integration=integration.name,
                    name=case.name,
                    line=r.line,
                    status=status,
                    seconds=r.duration,
                    messages=list(r.problems),
                    targets=[target_json(tr, redact) for tr in r.targets],
                )
                if status == "failed" and args.update:
                    change = _expectation_updates(integration, index, case, r)
                    if change:
                        updates.extend(change)
                        updated.append(record)
                records.append(record)
                if text:
                    _print_case(record)
        if updates:
            _write_updates(path, updates, updated, text)
    if args.k and not records and text:
        print(f"no test matches -k {args.k!r}", file=sys.stderr)
    summary = test_json(records, reports)
    if args.report:
        try:
            with open(args.report, "wb") as fh:
                fh.write(junit_xml(records, reports))
        except OSError as e:
            raise _Usage(f"--report: cannot write {args.report}: {e.strerror or e}") from None
    if text:
        print(f"{summary['passed']} passed, {summary['failed']} failed")
    else:
        print(dumps(summary))
    if args.k and not records:
        return 1
    return 0 if summary["failed"] == 0 else 1


def _print_case(record: TestRecord) -> None:
    if record.status == "passed":
        print(f"PASS {record.integration}: {record.name}")
        return
    where = f"{record.file}:{record.line}: " if record.line else ""
    print(f"{'ERROR' if record.status == 'error' else 'FAIL'} {where}{record.integration}: {record.name}")
    for line in record.messages:
        print(f"  {line}")


def _expectation_updates(
    integration: Integration, index: int, case: TestCase, result: CaseResult
) -> list[Any]:
    """``--update``: the new expect lists of a failed case, unless they would hold a secret value."""
    from meshline.compiler.testing import updated_expectations
    from meshline.spec.rewrite import ExpectUpdate, flow

    new = updated_expectations(case, result)
    text = flow(new)
    if integration.redactor.redact(text) != text:
        where = f"{integration.file}: {integration.name}: {case.name}"
        print(f"{where}: not updated: its outputs hold a secret value", file=sys.stderr)
        return []
    return [ExpectUpdate(integration.name, index, target, events) for target, events in new.items()]


def _write_updates(path: str, updates: list[Any], records: list[Any], text: bool) -> None:
    """Rewrite the expectations in ``path`` (only their text); then the cases count as updated."""
    import codecs

    from meshline.spec.rewrite import RewriteError, rewrite_expectations

    real = os.path.realpath(path)  # a symlink stays a symlink
    tmp = f"{real}.meshline-update"
    try:
        with open(real, "rb") as fh:
            raw = fh.read()
        bom = raw.startswith(codecs.BOM_UTF8)
        try:
            original = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise RewriteError(f"{path}: only UTF-8 files can be updated") from None
        new = rewrite_expectations(original, updates, path)
        with open(tmp, "wb") as fh:
            fh.write((codecs.BOM_UTF8 if bom else b"") + new.encode("utf-8"))
        os.chmod(tmp, os.stat(real).st_mode & 0o7777)
        os.replace(tmp, real)  # all or nothing
    except (OSError, RewriteError) as e:
        message = str(e) if isinstance(e, RewriteError) else f"{path}: cannot update: {e.strerror or e}"
        print(message, file=sys.stderr)
        with contextlib.suppress(OSError):
            os.remove(tmp)
        return
    for r in records:
        r.status = "updated"
    if text:
        names = ", ".join(repr(r.name) for r in records)
        print(f"UPDATED {path}: the expectations of {len(records)} test(s): {names}")


def cmd_run(args: argparse.Namespace) -> int:
    if args.watch:
        if args.runner == "dataflow":
            raise _Usage("--watch runs locally; it does not apply to --runner dataflow")
        return _watching(args, [args.file], lambda watch: _run_once(args, watch))
    return _run_once(args)


def _run_once(args: argparse.Namespace, watch: Watch | None = None) -> int:
    from meshline.compiler.preflight import preflight
    from meshline.run import Stopper, say
    from meshline.spec.resolve import resolve

    # Dataflow workers read Secret Manager themselves; local runs read it here, once.
    result = _load(args.file, _params(args.param), read_secrets=args.runner != "dataflow")
    for w in result.warnings:
        say(str(w), level="warning")
    resolved = [resolve(integration) for integration in result.integrations]
    problems = [p for r in resolved for p in preflight(r)]
    if problems:
        raise SpecError(problems)
    status = 0
    served = False  # some run had a job server (Prism, Flink) and SDK worker threads here
    report: list[dict[str, Any]] = []  # --format json
    # Before the runner is made: Beam's job-server wrapper keeps the SIGINT handler it finds
    # and calls it (see meshline.runners.guard.quiet_stop_on_exit).
    stopper = Stopper()
    stopper.install()
    quiet_worker_tracebacks()
    try:
        for integration in resolved:
            entry: dict[str, Any] = {"name": integration.name, "file": args.file}
            report.append(entry)
            runner_name, failed = _run_one(integration, args, stopper, entry, watch)
            served = served or runner_name != "direct"
            status = max(status, int(failed))
            if entry.get("status") == "cancelled":  # --watch cancelled the job: a file changed
                break
    except KeyboardInterrupt:  # before a run started (while building it): no table, status 130
        stopper.taken()
        raise
    if served:
        # At exit Beam stops the job server; the SDK worker threads of a run that failed are
        # still connected to it and would print their closed streams' tracebacks.
        silence_runner_threads()
    if args.format == "json":
        # one line, the last of stdout (a ``log`` target prints events before it)
        print(json.dumps({"integrations": report}, ensure_ascii=False, default=str), flush=True)
    return status


def _run_one(
    resolved: ResolvedIntegration,
    args: argparse.Namespace,
    stopper: Stopper,
    entry: dict[str, Any],
    watch: Watch | None,
) -> tuple[str, bool]:
    """The runner ``meshline run`` uses for one integration, and whether its run failed."""
    from meshline.run import run_integration, say
    from meshline.runners import RunnerSettings

    runner_name = args.runner or ("prism" if resolved.unbounded else "direct")
    if runner_name == "dataflow":
        from meshline.runners.dataflow import check_secrets

        check_secrets(resolved.integration)
    if args.runner is None:
        kind = "unbounded" if resolved.unbounded else "bounded"
        say(f"{resolved.name}: {kind} sources, using the {runner_name} runner", runner=runner_name)
    settings = RunnerSettings(
        name=runner_name,
        streaming=resolved.unbounded,
        prism_location=args.prism_location,
        flink_master=args.flink_master,
        beam_args=list(args.beam_args),
        allow_exposed=args.allow_exposed_runner,
    )
    return runner_name, run_integration(resolved, settings, stopper=stopper, entry=entry, watch=watch)


def _watching(args: argparse.Namespace, files: list[str], once: Callable[[Watch], int]) -> int:
    """Run ``once`` again whenever the files, or what they read, change; until Ctrl-C."""
    from meshline.watch import watching

    return watching(files, lambda f: _load(f, _params(args.param), strict=False).integrations, once)


def cmd_graph(args: argparse.Namespace) -> int:
    from meshline.graph import EXTENSIONS, format_for_path, render_graph

    fmt = args.format
    if fmt is None and args.output:
        fmt = format_for_path(args.output)
        if fmt is None:
            known = ", ".join(EXTENSIONS)
            raise _Usage(
                f"graph: cannot tell the format of {args.output!r} from its extension "
                f"(known: {known}); pass --format mermaid|dot|svg|png"
            )
    result = _load(args.file, _params(args.param), strict=False)
    out = render_graph(result.integrations, fmt or "mermaid")
    if args.output and (fmt or "mermaid") == "mermaid" and args.output.lower().endswith(".md"):
        out = b"```mermaid\n" + out + b"```\n"  # a Markdown page that renders the diagram
    if args.output:
        with open(args.output, "wb") as fh:
            fh.write(out)
    else:
        sys.stdout.buffer.write(out)
    return 0


def _marks_text(prop: dict[str, Any]) -> str:
    """What a config field's marks say, from its schema (``meshline.config.doc``'s secret and path)."""
    notes = []
    if prop.get("writeOnly") is True:
        notes.append(
            {
                "url": "secret: its user:password@ password",
                "keys": "secret: entries named like credentials",
            }.get(str(prop.get("x-secret")), "secret")
        )
    if prop.get("x-path") is True:
        notes.append("relative to the integration file's directory")
    return f" ({'; '.join(notes)})" if notes else ""


def cmd_connectors(args: argparse.Namespace) -> int:
    from meshline import registry

    if args.id:
        found = [c for k in ("source", "target", "transformation") if (c := registry.lookup(k, args.id))]
        if not found:
            known = sorted(
                set(registry.ids("source") + registry.ids("target") + registry.ids("transformation"))
            )
            raise _Usage(f"unknown connector {args.id!r} (known: {', '.join(known)})")
        for c in found:
            print(f"{c.kind} {c.id}: {c.description}")
            schema = c.schema()
            for key, prop in schema["properties"].items():
                req = " (required)" if key in schema.get("required", []) else ""
                default = f" [default: {json.dumps(prop['default'])}]" if "default" in prop else ""
                print(f"  {key}{req}: {prop.get('description', '')}{_marks_text(prop)}{default}")
            if args.json:
                print(json.dumps(schema, indent=2))
        return 0
    for kind in ("source", "target", "transformation"):
        print(f"{kind}s:")
        for cid in registry.ids(kind):  # type: ignore[arg-type]
            c = registry.lookup(kind, cid)  # type: ignore[arg-type]
            print(f"  {cid:<20} {c.description if c else ''}")
        planned = registry.planned_ids(kind)  # type: ignore[arg-type]
        if planned:
            print(f"  (planned: {', '.join(planned)})")
    return 0


def cmd_template(args: argparse.Namespace) -> int:
    from meshline.template import write_flex_template

    r = write_flex_template(args.file, args.output, image=args.image, name=args.name)
    for w in r.warnings:
        print(w, file=sys.stderr)
    print(r.render(), end="")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from meshline.spec import integration_schema

    print(json.dumps(integration_schema(), indent=2))
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    """``meshline import triggermesh FILE… [-o OUT]``: problems to stderr, one line each."""
    import yaml

    from meshline.importer.triggermesh import convert, load_manifests

    try:
        docs = load_manifests(args.files)
    except (OSError, yaml.YAMLError) as e:
        raise _Usage(f"cannot read manifests: {' '.join(str(e).split())}") from None
    if not docs:
        raise _Usage("no manifests found in " + ", ".join(args.files))
    result = convert(docs, name=args.name)
    for line in result.problems:
        print(f"not converted: {line}", file=sys.stderr)
    for line in result.notes:
        print(f"note: {line}", file=sys.stderr)
    if result.error:
        raise _Usage(result.error)
    text = result.to_yaml()
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)
    return 0


def cmd_completion(args: argparse.Namespace) -> int:
    from meshline.completion import render

    sys.stdout.write(render(_parser(), args.shell))
    return 0


# --------------------------------------------------------------------------- parser


class _Version(argparse.Action):
    """``--version``: Meshline's version, and the Beam and Python it runs with (Beam not imported)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kwargs: Any):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        from importlib.metadata import PackageNotFoundError, version

        from meshline import __version__

        try:
            beam = version("apache-beam")
        except PackageNotFoundError:
            beam = "not installed"
        python = ".".join(str(n) for n in sys.version_info[:3])
        print(f"meshline {__version__} (Apache Beam {beam}, Python {python})")
        parser.exit()


def _path(action: argparse.Action, kind: str = "file") -> argparse.Action:
    """Mark an argument for shell completion (see :mod:`meshline.completion`)."""
    action.completer = kind  # type: ignore[attr-defined]
    return action


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="meshline", description="Integration as code, compiled to Apache Beam.")
    p.add_argument("--version", action=_Version, help="print the version and exit")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser(
        "run", help="compile and run an integration", epilog="Beam pipeline options go after --."
    )
    _path(run.add_argument("file"))
    run.add_argument(
        "--runner",
        choices=["direct", "prism", "flink", "dataflow"],
        help="default: direct for bounded integrations, prism for unbounded ones",
    )
    _path(
        run.add_argument(
            "--prism-location", help="path of a prism binary (default: $MESHLINE_PRISM, the cache)"
        )
    )
    run.add_argument("--flink-master", default="[local]", help="HOST:PORT of a Flink cluster, or [local]")
    run.add_argument(
        "--allow-exposed-runner",
        action="store_true",
        help="run even if a runner server listens beyond 127.0.0.1 (a Prism or job-server jar you bring)",
    )
    run.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    run.add_argument(
        "--watch",
        action="store_true",
        help="run again whenever the file, or a file it reads (python module, stylesheet, input), changes",
    )
    run.add_argument(
        "--log-format",
        choices=["text", "json"],
        default="text",
        help="status lines and logs on stderr as text, or as one JSON object per line",
    )
    run.add_argument(
        "--format",
        choices=["text", "json"],
        default="text",
        help="json: also print a summary of the run (counts per stage, outputs) as the last line of stdout",
    )
    run.set_defaults(beam_args=[])
    run.set_defaults(fn=cmd_run)

    val = sub.add_parser("validate", help="check integration files without running them")
    _path(val.add_argument("files", nargs="+"))
    val.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    val.add_argument(
        "--format",
        choices=["text", "json"],
        default="text",
        help="json: one report on stdout (its shape: docs/cli.md)",
    )
    val.set_defaults(fn=cmd_validate)

    test = sub.add_parser("test", help="run the tests inside integration files")
    _path(test.add_argument("files", nargs="+"))
    test.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    test.add_argument(
        "-k", metavar="NAME", help="only the tests whose 'INTEGRATION: NAME' contains NAME (any case)"
    )
    test.add_argument(
        "--update",
        action="store_true",
        help="write the actual outputs of failing tests into the file as their expectations",
    )
    _path(test.add_argument("--report", metavar="FILE", help="also write a JUnit XML report here"))
    test.add_argument(
        "--format",
        choices=["text", "json"],
        default="text",
        help="json: one report on stdout (its shape: docs/cli.md)",
    )
    test.add_argument(
        "--watch", action="store_true", help="run the tests again whenever the files or what they read change"
    )
    test.set_defaults(fn=cmd_test)

    graph = sub.add_parser("graph", help="draw an integration")
    _path(graph.add_argument("file"))
    graph.add_argument(
        "--format",
        choices=["mermaid", "dot", "svg", "png"],
        help="default: from the extension of -o (.mmd/.md mermaid, .dot/.gv dot, .svg, .png), else mermaid",
    )
    _path(graph.add_argument("-o", "--output", help="write here instead of stdout"))
    graph.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    graph.set_defaults(fn=cmd_graph)

    con = sub.add_parser("connectors", help="list connectors, or print one's config schema")
    _path(con.add_argument("id", nargs="?"), "connector")
    con.add_argument("--json", action="store_true", help="also print the JSON Schema")
    con.set_defaults(fn=cmd_connectors)

    tpl = sub.add_parser("template", help="write a Dataflow Flex Template for an integration file")
    _path(tpl.add_argument("file"))
    _path(tpl.add_argument("-o", "--output", required=True, help="directory to write the template into"))
    tpl.add_argument("--image", help="container image name (default: a placeholder to replace)")
    tpl.add_argument("--name", help="which integration, when the file holds several")
    tpl.set_defaults(fn=cmd_template)

    imp = sub.add_parser("import", help="convert other systems' manifests into an integration file")
    imp.add_argument("system", choices=["triggermesh"], help="whose manifests: TriggerMesh/Knative")
    _path(imp.add_argument("files", nargs="+", help="manifest files or directories of them"))
    _path(imp.add_argument("-o", "--output", help="write the integration here (default: stdout)"))
    imp.add_argument("--name", default="imported", help="metadata.name of the integration")
    imp.set_defaults(fn=cmd_import)

    sch = sub.add_parser(
        "schema",
        help="print the JSON Schema of the integration file",
        epilog="For editors: ${params.NAME} and ${env.NAME} placeholders are allowed wherever a value goes.",
    )
    sch.set_defaults(fn=cmd_schema)

    comp = sub.add_parser(
        "completion",
        help="print a shell completion script",
        epilog="bash: source <(meshline completion bash) in ~/.bashrc; "
        "zsh: source <(meshline completion zsh) in ~/.zshrc after compinit.",
    )
    comp.add_argument("shell", choices=["bash", "zsh"])
    comp.set_defaults(fn=cmd_completion)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    _quiet_beam_logging()
    argv = list(sys.argv[1:] if argv is None else argv)
    beam_args: list[str] = []
    if "--" in argv:  # everything after -- goes to Beam untouched
        cut = argv.index("--")
        argv, beam_args = argv[:cut], argv[cut + 1 :]
    try:
        args = _parser().parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0) if e.code in (0, None) else 2
    if beam_args:
        if args.command != "run":
            print("meshline: Beam options after -- are only for 'run'", file=sys.stderr)
            return 2
        args.beam_args = beam_args
    if getattr(args, "log_format", "text") == "json":
        from meshline.run import use_json_logs

        use_json_logs()
    try:
        return int(args.fn(args))
    except _Usage as e:
        print(f"meshline: {e}", file=sys.stderr)
        return 2
    except MeshlineError as e:
        if os.environ.get("MESHLINE_DEBUG"):
            raise
        from meshline.run import say
        from meshline.secrets import mask

        for line in mask(str(e)).splitlines():  # no secret value or URL password, whatever raised it
            say(line, level="error")
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
