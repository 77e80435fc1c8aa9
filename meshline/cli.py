"""The ``meshline`` command line (SPEC §8).

Exit statuses: 0 success; 1 an invalid file, a failed test or a failed run;
2 a usage error. A user mistake prints one line per problem on stderr and never
a traceback (``MESHLINE_DEBUG=1`` shows tracebacks for bug reports).
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

from meshline.errors import DeliveryError, MeshlineError, SpecError
from meshline.runners.guard import quiet_worker_tracebacks, silence_runner_threads

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
) -> Any:
    """Load a file; ``read_secrets``: read secret parameters given as Secret Manager versions here."""
    from meshline.secrets import read_secret_manager
    from meshline.spec import load_file

    reader = (lambda name: read_secret_manager(name, "a secret parameter")) if read_secrets else None
    return load_file(path, params=params or {}, env=os.environ, strict=strict, secret_manager=reader)


# --------------------------------------------------------------------------- commands


def cmd_validate(args: argparse.Namespace) -> int:
    status = 0
    for path in args.files:
        try:
            result = _load(path, _params(args.param), strict=False)
        except MeshlineError as e:
            print(str(e), file=sys.stderr)
            status = 1
            continue
        for w in result.warnings:
            print(str(w), file=sys.stderr)
        names = ", ".join(i.name for i in result.integrations)
        print(f"{path}: valid ({names})")
    return status


def cmd_test(args: argparse.Namespace) -> int:
    from meshline.compiler.testing import run_tests

    passed = failed = 0
    for path in args.files:
        try:
            # Connectors are replaced by in-memory ones: missing connection parameters only warn.
            result = _load(path, _params(args.param), strict=False)
        except MeshlineError as e:
            print(str(e), file=sys.stderr)
            failed += 1
            continue
        for w in result.warnings:
            print(str(w), file=sys.stderr)
        for integration in result.integrations:
            if not integration.tests:
                print(f"{path}: {integration.name}: no tests")
            for case in run_tests(integration):
                if case.passed:
                    passed += 1
                    print(f"PASS {integration.name}: {case.name}")
                else:
                    failed += 1
                    print(f"FAIL {integration.name}: {case.name}")
                    for p in case.problems:
                        print(f"  {integration.redactor.redact(p)}")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


def cmd_run(args: argparse.Namespace) -> int:
    from meshline.compiler.preflight import preflight

    # Dataflow workers read Secret Manager themselves; local runs read it here, once.
    result = _load(args.file, _params(args.param), read_secrets=args.runner != "dataflow")
    for w in result.warnings:
        print(str(w), file=sys.stderr)
    problems = [p for integration in result.integrations for p in preflight(integration)]
    if problems:
        raise SpecError(problems)
    status = 0
    served = False  # some run had a job server (Prism, Flink) and SDK worker threads here
    # Before the runner is made: Beam's job-server wrapper keeps the SIGINT handler it finds
    # and calls it (see meshline.runners.guard.quiet_stop_on_exit).
    stopper = _Stopper()
    stopper.install()
    quiet_worker_tracebacks()
    try:
        for integration in result.integrations:
            runner_name, failed = _run_one(integration, args, stopper)
            served = served or runner_name != "direct"
            status = max(status, int(failed))
    except KeyboardInterrupt:  # before a run started (while building it): no table, status 130
        stopper.taken()
        raise
    if served:
        # At exit Beam stops the job server; the SDK worker threads of a run that failed are
        # still connected to it and would print their closed streams' tracebacks.
        silence_runner_threads()
    return status


def _run_one(integration: Any, args: argparse.Namespace, stopper: _Stopper) -> tuple[str, bool]:
    """Build and run one integration; its runner's name and whether it failed."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from meshline import registry
    from meshline.compiler import build_pipeline
    from meshline.compiler.progress import Progress
    from meshline.compiler.summary import collect_counters, render_summary
    from meshline.runners import RunnerSettings, committed, make_runner
    from meshline.secrets import mask

    unbounded = registry.is_unbounded(integration)
    runner_name = args.runner or ("prism" if unbounded else "direct")
    if runner_name == "dataflow":
        from meshline.runners.dataflow import check_secrets

        check_secrets(integration)
    if args.runner is None:
        kind = "unbounded" if unbounded else "bounded"
        print(f"{integration.name}: {kind} sources, using the {runner_name} runner", file=sys.stderr)
    settings = RunnerSettings(
        name=runner_name,
        streaming=unbounded,
        prism_location=args.prism_location,
        flink_master=args.flink_master,
        beam_args=list(args.beam_args),
        allow_exposed=args.allow_exposed_runner,
    )
    runner, runner_args = make_runner(settings)
    options = PipelineOptions([*runner_args, *args.beam_args], job_name=integration.name)
    pipeline = beam.Pipeline(runner=runner, options=options)
    build_pipeline(integration, pipeline, options={"runner": runner_name})
    started = time.monotonic()
    committed.install()
    committed.reset()
    print(f"running {integration.name} on {runner_name} ...", file=sys.stderr)
    run = None
    try:
        try:
            with Progress():
                run = pipeline.run()
                if runner_name == "dataflow":
                    # A remote job: report where it is, do not block on it (streaming never ends).
                    print(f"{integration.name}: submitted to Dataflow: {_job_id(run)}", file=sys.stderr)
                    return runner_name, False
                run.wait_until_finish()
        except Exception:
            if stopper.signum:  # Beam hands the KeyboardInterrupt on as another error
                raise KeyboardInterrupt from None
            raise
    except KeyboardInterrupt:
        stopper.taken()
        print(f"{integration.name}: {stopper.describe()}; stopping", file=sys.stderr)
        counters = _stop(run)
        print(render_summary(integration, counters), file=sys.stderr)
        print(
            f"{integration.name}: stopped after {time.monotonic() - started:.1f}s; the table counts "
            "what was committed (events of unfinished bundles were not acknowledged)",
            file=sys.stderr,
        )
        _silence_stderr()
        # Not through the interpreter's shutdown, which joins the runner's threads: one
        # may be waiting for a step. The job is cancelled; what it had not committed
        # is not acknowledged; the runner's child processes die with this one.
        stopper.exit_now()
    except DeliveryError as e:
        # A target could not write at all and had no dead-letter target: nothing of the
        # failed bundle was acknowledged, so an acknowledging source will redeliver it.
        message = mask(integration.redactor.redact(str(e).splitlines()[0]))
        print(f"{integration.name}: run failed: {message}", file=sys.stderr)
        return runner_name, True
    except MeshlineError:
        raise
    except Exception as e:
        if os.environ.get("MESHLINE_DEBUG"):
            raise
        message = mask(integration.redactor.redact(failure_line(e)))
        print(f"{integration.name}: run failed: {message}", file=sys.stderr)
        return runner_name, True
    elapsed = time.monotonic() - started
    counters = collect_counters(run)
    print(render_summary(integration, counters), file=sys.stderr)
    print(f"{integration.name}: done in {elapsed:.1f}s", file=sys.stderr)
    return runner_name, False


#: Seconds a run may take to stop after the first Ctrl-C or SIGTERM before the process ends at once.
STOP_GRACE = 10.0
#: Seconds between raising an interrupt again that the main thread has not taken yet.
RESEND = 0.5


def _ignore_interrupts(hook: Any) -> Any:
    """``sys.unraisablehook`` that says nothing of a ``KeyboardInterrupt`` Python had to ignore."""

    def unraisable(info: Any) -> None:
        if not isinstance(info.exc_value, KeyboardInterrupt):
            hook(info)

    return unraisable


class _Stopper:
    """SIGINT and SIGTERM during ``meshline run``.

    The first signal unwinds the run (``KeyboardInterrupt`` in the main thread): nothing
    that was not committed is acknowledged, the job is cancelled, half-written objects are
    removed, the table of what was committed is printed, and the process ends with status
    128 + the signal's number (130 for Ctrl-C, 143 for SIGTERM) without waiting for the
    runner's threads (one may be waiting for a stuck step). Steps never hold the main
    thread in C code (see :mod:`meshline.transforms.sandbox`), so the unwinding starts at
    once. A ``KeyboardInterrupt`` that lands where Python ignores exceptions (a weakref
    callback, a ``__del__``) is raised again, every :data:`RESEND` seconds, until the run's
    stop path takes it (:meth:`taken`). If the process has still not ended
    :data:`STOP_GRACE` seconds later (a job server slow to answer the cancel), or a second
    signal comes, it ends at once with the same status. Either way the runner's child
    processes die with it (:mod:`meshline.runners.guard`), as do the step processes.
    """

    def __init__(self) -> None:
        self.signum = 0
        self._taken = threading.Event()
        self._resending = False

    def install(self) -> None:
        signal.signal(signal.SIGINT, self._handle)
        signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        if self._resending:  # our own signal, raised again
            self._resending = False
            if self._taken.is_set():
                return
            raise KeyboardInterrupt
        if self.signum:
            self.exit_now()
        self.signum = signum
        self.install()  # the next signal comes here directly, not through Beam's job-server handler
        silence_runner_threads()
        sys.unraisablehook = _ignore_interrupts(sys.unraisablehook)
        timer = threading.Timer(STOP_GRACE, self.exit_now)
        timer.daemon = True
        timer.start()
        threading.Thread(target=self._resend, name="meshline-stop", daemon=True).start()
        raise KeyboardInterrupt

    def taken(self) -> None:
        """The run's stop path has the interrupt: no more raising it again."""
        self._taken.set()

    def _resend(self) -> None:
        while not self._taken.wait(RESEND):
            self._resending = True
            signal.pthread_kill(threading.main_thread().ident or 0, self.signum)

    def describe(self) -> str:
        return "terminated (SIGTERM)" if self.signum == signal.SIGTERM else "interrupted"

    def status(self) -> int:
        return 128 + (self.signum or signal.SIGINT)

    def exit_now(self) -> None:
        try:
            sys.stderr.flush()
        except Exception:
            pass
        os._exit(self.status())


_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt|Warning)\b.*")


def failure_line(e: BaseException) -> str:
    """One line saying why a run failed: for a bundle that failed on a portable runner (whose
    message holds the worker's traceback), the exception the traceback ends with."""
    text = f"{type(e).__name__}: {e}"
    if "Traceback (most recent call last)" not in text:
        return text.splitlines()[0]
    found = [line.strip() for line in text.splitlines() if _EXCEPTION_LINE.match(line.strip())]
    return found[-1].removeprefix("meshline.errors.") if found else text.splitlines()[0]


def _job_id(run: Any) -> str:
    try:
        return str(run.job_id())
    except AttributeError:  # --template_location: a job file was written, no job started
        return "no job started (template written)"


def _stop(run: Any) -> dict[str, int]:
    """Ctrl-C: cancel the job, undo what was half done, and return the committed counters.

    The counters are those of the bundles that finished (:mod:`meshline.runners.committed`):
    what targets count as delivered there is stored. Half-written objects of unfinished
    bundles (the file target's hidden temporary files) are removed
    (:mod:`meshline.cleanup`): their events were not acknowledged.
    """
    from meshline import cleanup
    from meshline.compiler.summary import collect_counters
    from meshline.runners import committed

    silence_runner_threads()
    if run is not None:
        try:
            run.cancel()
        except Exception:  # already stopping; the job server exits with us
            pass
    cleanup.interrupted()
    # The SDK workers in this process (direct, Prism, Flink: loopback) recorded what they
    # finished; a worker elsewhere (an EXTERNAL or DOCKER environment): ask the job.
    recorded = committed.counters()
    if recorded or run is None:
        return recorded
    return _with_deadline(lambda: collect_counters(run), 3.0) or {}


def _with_deadline(fn: Any, seconds: float) -> Any:
    """``fn()`` in a daemon thread; ``None`` when it has not returned within ``seconds``."""
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(fn()), name="meshline-stop", daemon=True)
    thread.start()
    thread.join(seconds)
    return out[0] if out else None


def _silence_stderr() -> None:
    """Worker threads print their closed-stream errors while the process exits (and Beam's
    exit handlers stop the job server): keep that off the user's terminal."""
    sys.stderr.flush()
    os.dup2(os.open(os.devnull, os.O_WRONLY), 2)


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


def cmd_connectors(args: argparse.Namespace) -> int:
    import json

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
                print(f"  {key}{req}: {prop.get('description', '')}{default}")
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
    import json

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


# --------------------------------------------------------------------------- parser


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="meshline", description="Integration as code, compiled to Apache Beam.")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser(
        "run", help="compile and run an integration", epilog="Beam pipeline options go after --."
    )
    run.add_argument("file")
    run.add_argument(
        "--runner",
        choices=["direct", "prism", "flink", "dataflow"],
        help="default: direct for bounded integrations, prism for unbounded ones",
    )
    run.add_argument("--prism-location", help="path of a prism binary (default: $MESHLINE_PRISM, the cache)")
    run.add_argument("--flink-master", default="[local]", help="HOST:PORT of a Flink cluster, or [local]")
    run.add_argument(
        "--allow-exposed-runner",
        action="store_true",
        help="run even if a runner server listens beyond 127.0.0.1 (a Prism or job-server jar you bring)",
    )
    run.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    run.set_defaults(beam_args=[])
    run.set_defaults(fn=cmd_run)

    val = sub.add_parser("validate", help="check integration files without running them")
    val.add_argument("files", nargs="+")
    val.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    val.set_defaults(fn=cmd_validate)

    test = sub.add_parser("test", help="run the tests inside integration files")
    test.add_argument("files", nargs="+")
    test.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    test.set_defaults(fn=cmd_test)

    graph = sub.add_parser("graph", help="draw an integration")
    graph.add_argument("file")
    graph.add_argument(
        "--format",
        choices=["mermaid", "dot", "svg", "png"],
        help="default: from the extension of -o (.mmd/.md mermaid, .dot/.gv dot, .svg, .png), else mermaid",
    )
    graph.add_argument("-o", "--output", help="write here instead of stdout")
    graph.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    graph.set_defaults(fn=cmd_graph)

    con = sub.add_parser("connectors", help="list connectors, or print one's config schema")
    con.add_argument("id", nargs="?")
    con.add_argument("--json", action="store_true", help="also print the JSON Schema")
    con.set_defaults(fn=cmd_connectors)

    tpl = sub.add_parser("template", help="write a Dataflow Flex Template for an integration file")
    tpl.add_argument("file")
    tpl.add_argument("-o", "--output", required=True, help="directory to write the template into")
    tpl.add_argument("--image", help="container image name (default: a placeholder to replace)")
    tpl.add_argument("--name", help="which integration, when the file holds several")
    tpl.set_defaults(fn=cmd_template)

    imp = sub.add_parser("import", help="convert other systems' manifests into an integration file")
    imp.add_argument("system", choices=["triggermesh"], help="whose manifests: TriggerMesh/Knative")
    imp.add_argument("files", nargs="+", help="manifest files or directories of them")
    imp.add_argument("-o", "--output", help="write the integration here (default: stdout)")
    imp.add_argument("--name", default="imported", help="metadata.name of the integration")
    imp.set_defaults(fn=cmd_import)

    sch = sub.add_parser("schema", help="print the JSON Schema of the integration file")
    sch.set_defaults(fn=cmd_schema)
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
    try:
        return int(args.fn(args))
    except _Usage as e:
        print(f"meshline: {e}", file=sys.stderr)
        return 2
    except MeshlineError as e:
        if os.environ.get("MESHLINE_DEBUG"):
            raise
        from meshline.secrets import mask

        print(mask(str(e)), file=sys.stderr)  # no secret value or URL password, whatever raised it
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
