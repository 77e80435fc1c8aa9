"""Running one integration (runner → build → run → summary): ``meshline run`` and the launcher.

:func:`run_integration` is the one way an integration runs: the CLI
(:mod:`meshline.cli`) and the launcher a Flex Template calls
(:mod:`meshline.launch`) both load the file, resolve the integration
(:mod:`meshline.spec.resolve`), pick the runner and hand over here. It makes
the runner, builds the pipeline, runs it (with the live progress line), and
reports what happened: status lines on stderr (text, or JSON records with
``--log-format json``: :func:`say`), the table of counts, where outputs went.
A run that fails says why in one line (:func:`failure_line`); a Ctrl-C or
SIGTERM unwinds it through :class:`Stopper`. On Dataflow it returns once the
job is submitted. Importing this module imports no Beam.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any, Protocol

from meshline.errors import DeliveryError, MeshlineError
from meshline.runners import RunnerSettings
from meshline.runners.guard import silence_runner_threads
from meshline.spec.model import Integration
from meshline.spec.resolve import ResolvedIntegration

__all__ = [
    "RESEND",
    "STOP_GRACE",
    "Stopper",
    "failure_line",
    "has_option",
    "json_logs",
    "run_integration",
    "say",
    "use_json_logs",
]

_LOGGER = logging.getLogger("meshline")


class Watching(Protocol):
    """``meshline run --watch`` during one run (:class:`meshline.cli.Watch`)."""

    restarting: bool

    def started(self, run: Any) -> None: ...


def has_option(beam_args: Sequence[str], name: str) -> bool:
    """Whether ``--NAME`` (``--NAME=V`` or ``--NAME V``) is among Beam's arguments."""
    flag = f"--{name}"
    return any(a == flag or a.startswith(flag + "=") for a in beam_args)


def run_integration(
    resolved: ResolvedIntegration,
    settings: RunnerSettings,
    *,
    stopper: Stopper | None = None,
    entry: dict[str, Any] | None = None,
    watch: Watching | None = None,
    launcher: bool = False,
) -> bool:
    """Build and run one integration on the runner ``settings`` names; whether it failed.

    ``entry`` receives its record for ``--format json`` (status, seconds, stages,
    counters, outputs). ``stopper``: the signal handling of ``meshline run`` (without
    it a Ctrl-C is an ordinary ``KeyboardInterrupt``). ``watch``: ``--watch``, told
    when the job started and cancelling it when a file changes. ``launcher``: called by
    a Flex Template's launcher, whose Dataflow options come from Dataflow's environment.
    """
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from meshline.compiler import build_pipeline
    from meshline.compiler.progress import Progress
    from meshline.compiler.summary import collect_counters, outputs, render_summary, stage_rows
    from meshline.runners import committed, make_runner
    from meshline.runners.pacing import pacing
    from meshline.secrets import mask

    integration = resolved.integration
    entry = {} if entry is None else entry
    if settings.execution is None:
        settings = dataclasses.replace(settings, execution=integration.execution)
    runner_name = settings.name
    entry["runner"] = runner_name
    if runner_name == "dataflow" and launcher:
        from meshline.runners.dataflow import dataflow_runner

        runner, runner_args = dataflow_runner(settings, require_options=False)
    else:
        runner, runner_args = make_runner(settings)
    beam_args = list(settings.beam_args)
    named = {} if has_option(beam_args, "job_name") else {"job_name": integration.name}
    options = PipelineOptions([*runner_args, *beam_args], **named)
    pipeline = beam.Pipeline(runner=runner, options=options)
    paced = pacing(runner_name, settings.execution)
    build_pipeline(resolved, pipeline, options={"runner": runner_name, "pacing": paced})
    started = time.monotonic()
    committed.install()
    committed.reset()
    say(f"running {integration.name} on {runner_name} ...", integration=integration.name, runner=runner_name)

    def failed(message: str) -> bool:
        say(f"{integration.name}: run failed: {message}", level="error")
        entry.update(status="failed", error=message, seconds=round(time.monotonic() - started, 3))
        return True

    run = None
    drainer = None
    try:
        try:
            with Progress(integration=integration, enabled=not _LOG_JSON):
                run = pipeline.run()
                packaged = getattr(runner, "packaged", None)
                if packaged:
                    # Flink with --output_executable_path: the job jar is the result, for `flink run`.
                    say(f"{integration.name}: wrote the Flink job jar {packaged}", jar=packaged)
                    seconds = round(time.monotonic() - started, 3)
                    entry.update(status="packaged", jar=packaged, seconds=seconds)
                    return False
                if runner_name == "dataflow":
                    # A remote job: report where it is, do not block on it (streaming never ends;
                    # Flex Templates must return once the job is submitted).
                    say(f"{integration.name}: submitted to Dataflow: {_job_id(run)}", job=_job_id(run))
                    entry.update(status="submitted", job=_job_id(run), outputs=outputs(integration))
                    _say_outputs(integration, entry["outputs"])
                    return False
                if watch is not None:
                    watch.started(run)
                if settings.streaming and callable(getattr(runner, "drainer", None)):
                    # Flink: end the run once every source has ended (meshline.runners.flink_drain)
                    drainer = runner.drainer(str(options.get_all_options()["job_name"]), say)
                run.wait_until_finish()
                if drainer is not None and drainer.drained:
                    _await_acknowledgements(integration.name)
        except Exception:
            if stopper is not None and stopper.signum:  # Beam hands the KeyboardInterrupt on as another error
                raise KeyboardInterrupt from None
            raise
    except KeyboardInterrupt:
        if stopper is None:
            raise
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
        return failed(mask(integration.redactor.redact(str(e).splitlines()[0])))
    except MeshlineError:
        raise
    except Exception as e:
        if watch is not None and watch.restarting:  # --watch cancelled the job: a file changed
            entry.update(status="cancelled", seconds=round(time.monotonic() - started, 3))
            return False
        if os.environ.get("MESHLINE_DEBUG"):
            raise
        return failed(mask(integration.redactor.redact(failure_line(e))))
    finally:
        if drainer is not None:
            drainer.close()
    elapsed = time.monotonic() - started
    counters = collect_counters(run)
    entry.update(
        status="succeeded",
        seconds=round(elapsed, 3),
        stages=stage_rows(integration, counters),
        counters=counters,
        outputs=outputs(integration),
    )
    if _LOG_JSON:
        say(f"{integration.name}: summary", stages=entry["stages"])
    else:
        print(render_summary(integration, counters), file=sys.stderr)
    _say_outputs(integration, entry["outputs"])
    say(f"{integration.name}: done in {elapsed:.1f}s", seconds=round(elapsed, 3))
    return False


ACK_WAIT_S = 15.0


def _await_acknowledgements(name: str) -> None:
    """After a drained Flink job: let the SDK worker in this process run the last bundles'
    acknowledgements, which Flink requests as (or just after) the job finishes."""
    from meshline.connectors import acks

    left = acks.wait(ACK_WAIT_S)
    if left:
        say(
            f"{name}: {left} bundle(s) were not acknowledged within {ACK_WAIT_S:.0f}s of the job's end; "
            "their messages will be delivered again (at least once)"
        )


def _say_outputs(integration: Integration, where: list[dict[str, str]]) -> None:
    """Where the run's outputs went: one line per target (secrets masked)."""
    if _LOG_JSON:
        say(f"{integration.name}: outputs", outputs=where)
        return
    print(f"{integration.name}: outputs:", file=sys.stderr)
    for o in where:
        print(f"  {o['target']} ({o['type']}): {o['where'] or '-'}", file=sys.stderr)


# --------------------------------------------------------------------------- status lines and logs

#: ``meshline run --log-format json``: status lines and log records are JSON objects, one per line.
_LOG_JSON = False


def json_logs() -> bool:
    """Whether status lines and logs are JSON records (``--log-format json``)."""
    return _LOG_JSON


def say(message: str, level: str = "info", **fields: Any) -> None:
    """A status line on stderr: text, or a JSON record with ``fields`` (``--log-format json``)."""
    if not _LOG_JSON:
        print(message, file=sys.stderr)
        return
    record = {"time": _now(), "level": level, "logger": "meshline", "message": message, **fields}
    sys.stderr.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
    sys.stderr.flush()


def _now(created: float | None = None) -> str:
    import datetime as dt

    t = dt.datetime.fromtimestamp(time.time() if created is None else created, dt.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


class _JsonLogFormatter(logging.Formatter):
    """Log records as JSON objects (``time``, ``level``, ``logger``, ``message``), secrets masked."""

    def format(self, record: logging.LogRecord) -> str:
        from meshline.secrets import mask

        doc: dict[str, Any] = {
            "time": _now(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": mask(record.getMessage()),
        }
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            doc["error"] = mask(f"{type(error).__name__}: {error}".splitlines()[0])
        return json.dumps(doc, ensure_ascii=False, default=str)


def use_json_logs(enabled: bool = True) -> None:
    """Status lines and log records as JSON from now on (``False``: back to text)."""
    global _LOG_JSON
    _LOG_JSON = enabled
    if not enabled:
        return
    formatter = _JsonLogFormatter()
    for handler in logging.getLogger().handlers:
        handler.setFormatter(formatter)


# --------------------------------------------------------------------------- stopping

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


class Stopper:
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
        self._finished = ""  # finish(): a stop asked for by the run itself, ending with status 0

    def finish(self, why: str) -> None:
        """Stop the run as Ctrl-C would, from any thread, but end with status 0 (``meshline tap
        --limit``): what was committed stays acknowledged, what was not is redelivered later."""
        self._finished = why
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)

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
        if self._finished:
            return self._finished
        return "terminated (SIGTERM)" if self.signum == signal.SIGTERM else "interrupted"

    def status(self) -> int:
        if self._finished and self.signum != signal.SIGTERM:
            return 0
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
