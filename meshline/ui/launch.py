"""What ``meshline run --metrics-port/--ui`` and ``meshline tap`` start beside a run.

:func:`observe_run` turns :mod:`meshline.observe` on before the pipeline is built, serves
the endpoint(s) (:class:`meshline.ui.server.Endpoint`) and, for ``tap``, prints what the tap
samples; everything it started stops when its stack is closed.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from meshline.errors import UsageError

if TYPE_CHECKING:
    import argparse

__all__ = ["observe_run", "start_tap", "tap_stage"]


def observe_run(args: argparse.Namespace, resolved: list[Any], stopper: Any) -> contextlib.ExitStack:
    """``--metrics-port``, ``--ui`` and ``meshline tap``: in-process observation and its endpoints.

    The returned stack stops what was started (endpoints, the tap's printer) when closed.
    """
    from meshline import observe
    from meshline.run import say

    stack = contextlib.ExitStack()
    stage = getattr(args, "stage", None)
    wanted = args.metrics_port is not None or args.ui is not None or stage is not None
    observe.enable(wanted)
    if not wanted:
        return stack
    observe.reset()
    observe.set_masks(args.mask)
    remote = args.runner == "dataflow" or (args.runner == "flink" and args.flink_master != "[local]")
    if remote:
        raise UsageError(
            "--metrics-port, --ui and tap watch runs whose workers are in this process (direct, prism, "
            "flink [local]); a Flink cluster or Dataflow shows Meshline's counters in its own metrics"
        )
    integrations = [r.integration for r in resolved]
    if stage is not None:
        stack.callback(start_tap(args, integrations, stopper))
    from meshline.ui.server import Endpoint

    ports = []
    if args.ui is not None:
        ports.append((args.ui, True))
    if args.metrics_port is not None and (args.ui is None or args.metrics_port != args.ui):
        ports.append((args.metrics_port, False))
    for port, ui in ports:
        try:
            endpoint = Endpoint(lambda: integrations, port, ui=ui).start()
        except OSError as e:
            stack.close()
            raise UsageError(str(e)) from None
        stack.callback(endpoint.stop)
        if ui:
            say(f"live page on {endpoint.url} (metrics on {endpoint.url}metrics)", ui=endpoint.url)
        else:
            say(f"metrics on {endpoint.url}metrics", metrics=f"{endpoint.url}metrics")
    return stack


def tap_stage(text: str, integrations: list[Any]) -> str:
    """``source.S``/``trigger.T``/``step.X``/``target.T``, or a bare name that names one stage."""
    stages = [
        *(f"source.{x.name}" for i in integrations for x in i.sources),
        *(f"trigger.{x.name}" for i in integrations for x in i.triggers),
        *(f"step.{x.name}" for i in integrations for x in i.transformations),
        *(f"target.{x.name}" for i in integrations for x in i.targets),
    ]
    if text in stages:
        return text
    named = [st for st in stages if st.split(".", 1)[1] == text]
    if len(named) == 1:
        return named[0]
    if named:
        raise UsageError(f"tap: {text!r} names several stages: {', '.join(named)}")
    raise UsageError(f"tap: no stage {text!r}; stages: {', '.join(stages)}")


def start_tap(args: argparse.Namespace, integrations: list[Any], stopper: Any) -> Callable[[], None]:
    """Open the tap and print what it samples, as JSON lines on stdout; returns its stop."""
    import threading

    from meshline import observe

    stage = tap_stage(args.stage, integrations)
    tap = observe.open_tap(stage, rate=max(1, args.rate), keep=10_000)
    done = threading.Event()
    limit = max(0, args.limit)
    printed = [0]

    def emit(events: list[dict[str, Any]]) -> None:
        for e in events:
            if limit and printed[0] >= limit:
                break
            sys.stdout.write(json.dumps(e, ensure_ascii=False, default=str) + "\n")
            printed[0] += 1
        sys.stdout.flush()

    def printer() -> None:
        while not done.is_set():
            emit(tap.take(timeout=0.2))
            if limit and printed[0] >= limit:
                stopper.finish(f"tap: printed {printed[0]} event(s) of {stage}")
                return

    thread = threading.Thread(target=printer, name="meshline-tap", daemon=True)
    thread.start()

    def stop() -> None:
        done.set()
        thread.join(timeout=2)
        observe.close_tap(tap)
        emit(tap.take())  # what was sampled after the printer's last look (a bounded run's end)

    return stop
