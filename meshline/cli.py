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
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from meshline.errors import MeshlineError, SpecError, UsageError
from meshline.loading import load as _load
from meshline.loading import load_report as _load_report
from meshline.loading import params as _params
from meshline.loading import print_problems as _print_problems
from meshline.runners.guard import quiet_worker_tracebacks, silence_runner_threads

if TYPE_CHECKING:
    from meshline.run import Stopper
    from meshline.spec.resolve import ResolvedIntegration
    from meshline.watch import Watch

__all__ = ["main"]

_LOGGER = logging.getLogger("meshline")


_Usage = UsageError  # a mistake on the command line: one line, status 2


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


# --------------------------------------------------------------------------- commands


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
    from meshline.testcmd import test_once

    if args.watch:
        return _watching(args, args.files, lambda _watch: test_once(args))
    return test_once(args)


def cmd_run(args: argparse.Namespace) -> int:
    if args.update or args.previous:
        from meshline.update import update_options

        args.beam_args = [*args.beam_args, *update_options(args)]  # Dataflow's --update (docs/deploy.md)
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
    from meshline.ui.launch import observe_run

    watching = observe_run(args, resolved, stopper)
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
    finally:
        watching.close()
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


def cmd_tap(args: argparse.Namespace) -> int:
    return _run_once(args)


def _watching(args: argparse.Namespace, files: list[str], once: Callable[[Watch], int]) -> int:
    """Run ``once`` again whenever the files, or what they read, change; until Ctrl-C."""
    from meshline.watch import watching

    return watching(files, lambda f: _load(f, _params(args.param), strict=False).integrations, once)


def cmd_replay(args: argparse.Namespace) -> int:
    """``meshline replay FILE --from TARGET``: dead letters through the integration again (delivery.md)."""
    from meshline.replay import replay_command

    return replay_command(args)


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


def cmd_deploy(args: argparse.Namespace) -> int:
    """``meshline deploy FILE --to flink-kubernetes -o DIR``: image and manifests (docs/deploy.md)."""
    from meshline.deploy import deploy_command

    return deploy_command(args)


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


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}")
    return port


def _log_format(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument(
        "--log-format",
        choices=["text", "json"],
        default="text",
        help="status lines and logs on stderr as text, or as one JSON object per line",
    )


def _run_arguments(cmd: argparse.ArgumentParser) -> None:
    """The options of ``run`` that ``tap`` shares."""
    cmd.add_argument(
        "--runner",
        choices=["direct", "prism", "flink", "dataflow"],
        help="default: direct for bounded integrations, prism for unbounded ones",
    )
    _path(
        cmd.add_argument(
            "--prism-location", help="path of a prism binary (default: $MESHLINE_PRISM, the cache)"
        )
    )
    cmd.add_argument("--flink-master", default="[local]", help="HOST:PORT of a Flink cluster, or [local]")
    cmd.add_argument(
        "--allow-exposed-runner",
        action="store_true",
        help="run even if a runner server listens beyond 127.0.0.1 (a Prism or job-server jar you bring)",
    )
    cmd.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    _log_format(cmd)
    cmd.add_argument(
        "--format",
        choices=["text", "json"],
        default="text",
        help="json: also print a summary of the run (counts per stage, outputs) as the last line of stdout",
    )
    cmd.add_argument(
        "--mask",
        action="append",
        default=[],
        metavar="FIELD",
        help="show this data field (data.a.b) as *** in taps and on the live page (repeatable)",
    )


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="meshline", description="Integration as code, compiled to Apache Beam.")
    p.add_argument("--version", action=_Version, help="print the version and exit")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser(
        "run", help="compile and run an integration", epilog="Beam pipeline options go after --."
    )
    _path(run.add_argument("file"))
    _run_arguments(run)
    run.add_argument(
        "--watch",
        action="store_true",
        help="run again whenever the file, or a file it reads (python module, stylesheet, input), changes",
    )
    run.add_argument(
        "--metrics-port",
        type=_port,
        metavar="PORT",
        help="serve Prometheus metrics on http://127.0.0.1:PORT/metrics while the run goes on "
        "(0: any free port)",
    )
    run.add_argument(
        "--ui",
        nargs="?",
        const=0,
        type=_port,
        metavar="PORT",
        help="serve a live page (graph with counts and rates, dead letters, taps) on 127.0.0.1:PORT "
        "(default: any free port; the address is printed)",
    )
    run.add_argument(
        "--update",
        action="store_true",
        help="dataflow: replace the running job of the same name, keeping its state (Beam's --update)",
    )
    _path(
        run.add_argument(
            "--previous",
            metavar="OLD",
            help="with --update: the file the running job was started from; renamed sources and targets "
            "become --transform_name_mapping",
        )
    )
    run.set_defaults(beam_args=[])
    run.set_defaults(fn=cmd_run)

    tap = sub.add_parser(
        "tap",
        help="run an integration and print a sample of the events passing one stage, as JSON lines",
        epilog="STAGE is source.NAME, trigger.NAME, step.NAME or target.NAME (or a name that is unique). "
        "The integration runs as with 'run' (its targets are written). Beam pipeline options go after --.",
    )
    _path(tap.add_argument("file"))
    tap.add_argument("stage")
    _run_arguments(tap)
    tap.add_argument("--limit", type=int, default=0, help="stop the run after printing this many events")
    tap.add_argument(
        "--rate", type=int, default=100, help="print at most this many events a second (default 100)"
    )
    tap.set_defaults(beam_args=[], watch=False, metrics_port=None, ui=None, update=False, previous=None)
    tap.set_defaults(fn=cmd_tap)

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

    rep = sub.add_parser(
        "replay",
        help="send the dead letters stored in a target through the integration again",
        epilog="Each goes back where it failed: its trigger, or its target; meshline* attributes removed.",
    )
    _path(rep.add_argument("file"))
    rep.add_argument(
        "--from", dest="from_target", required=True, metavar="TARGET", help="the target holding dead letters"
    )
    rep.add_argument(
        "--where",
        metavar="CESQL",
        help="only dead letters this CESQL expression selects (meshline* included)",
    )
    rep.add_argument(
        "--dry-run", action="store_true", help="print what would be replayed, where; send nothing"
    )
    rep.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    rep.add_argument(
        "--format",
        choices=["text", "json"],
        default="text",
        help="json: --dry-run prints one JSON object per dead letter; a replay its counts on stdout",
    )
    _log_format(rep)
    rep.set_defaults(fn=cmd_replay)

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

    dep = sub.add_parser("deploy", help="write a container image build and manifests to run an integration")
    _path(dep.add_argument("file"))
    dep.add_argument("--to", required=True, metavar="PLATFORM", help="where: flink-kubernetes")
    _path(dep.add_argument("-o", "--output", required=True, help="directory to write into"))
    _path(dep.add_argument("--previous", metavar="OLD", help="warn when the edit from OLD loses saved state"))
    dep.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    dep.add_argument("--image", help="container image name (default: meshline-NAME:latest)")
    dep.add_argument("--namespace", default="default", help="Kubernetes namespace (default: default)")
    dep.add_argument("--parallelism", type=int, default=1, help="the job's parallelism (default 1)")
    dep.add_argument("--cpu", type=float, default=1.0, help="CPUs per JobManager and TaskManager (default 1)")
    dep.add_argument("--memory", default="2048m", help="memory per JobManager and TaskManager (2048m)")
    dep.add_argument("--state-dir", help="durable URI for checkpoints and savepoints (s3://…, gs://…)")
    dep.add_argument("--name", help="which integration, when the file holds several")
    dep.set_defaults(fn=cmd_deploy)

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
        if args.command not in ("run", "tap"):
            print("meshline: Beam options after -- are only for 'run' and 'tap'", file=sys.stderr)
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
