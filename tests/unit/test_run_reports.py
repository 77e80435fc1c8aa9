"""What a run reports: why it failed, in one line; what its workers finished, when it is stopped."""

from __future__ import annotations

import io
import threading

from meshline.run import failure_line
from meshline.runners.guard import _NoWorkerTracebacks

PRISM_FAILURE = """\
Pipeline job-001 failed in state FAILED: bundle inst001 stage-001 failed:Traceback (most recent call last):
  File "apache_beam/runners/common.py", line 1512, in apache_beam.runners.common.DoFnRunner.process
  File "/x/meshline/connectors/objects.py", line 446, in process
    when = window.start.to_utc_datetime()
OverflowError: date value out of range

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/x/apache_beam/runners/worker/sdk_worker.py", line 310, in _execute
    response = task()
OverflowError: date value out of range [while running 'Target[out]/Objects/Write']
"""


def test_a_portable_runners_failure_is_the_exception_its_traceback_ends_with():
    assert failure_line(RuntimeError(PRISM_FAILURE)) == (
        "OverflowError: date value out of range [while running 'Target[out]/Objects/Write']"
    )
    assert failure_line(ValueError("first line\nsecond")) == "ValueError: first line"


def test_a_worker_threads_traceback_does_not_reach_stderr():
    out = io.StringIO()
    stream = _NoWorkerTracebacks(out)

    def worker():
        print("Traceback (most recent call last):\n  File x\nKeyError: 1", file=stream)  # type: ignore[arg-type]
        print("a worker's own line", file=stream)  # type: ignore[arg-type]

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    print("Traceback (most recent call last): the main thread's own", file=stream)  # type: ignore[arg-type]
    assert out.getvalue() == "a worker's own line\nTraceback (most recent call last): the main thread's own\n"


def test_the_workers_of_this_process_record_what_they_finished():
    import apache_beam as beam

    from meshline.runners import committed, in_process_runner

    committed.install()
    committed.reset()

    def count(n: int) -> int:
        beam.metrics.Metrics.counter("meshline", "target.out.delivered").inc(n)
        beam.metrics.Metrics.counter("other", "ignored").inc()
        return n

    with beam.Pipeline(runner=in_process_runner()) as p:
        _ = p | beam.Create([1, 2, 3]) | beam.Map(count)
    assert committed.counters() == {"target.out.delivered": 6}
    committed.reset()
    assert committed.counters() == {}


SWALLOWED = """
import os, signal, sys, time
from meshline.run import Stopper as _Stopper

stopper = _Stopper()
stopper.install()

class Dropped:
    def __del__(self):  # Python ignores what a __del__ raises: the first interrupt lands here
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.2)

try:
    Dropped()
    print("interrupt swallowed", flush=True)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        time.sleep(0.01)
    print("never taken", flush=True)
except KeyboardInterrupt:
    stopper.taken()
    print("taken", flush=True)
    time.sleep(1)  # no second interrupt arrives once taken
    print("stopping", flush=True)
    stopper.exit_now()
"""


def test_an_interrupt_python_swallowed_is_raised_again():
    import subprocess
    import sys

    cmd = [sys.executable, "-c", SWALLOWED]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert r.stdout.split() == ["interrupt", "swallowed", "taken", "stopping"], r.stdout + r.stderr
    assert r.returncode == 130
    assert "Exception ignored" not in r.stderr and "Traceback" not in r.stderr, r.stderr
