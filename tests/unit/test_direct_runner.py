"""The direct runner on several cores: its gRPC servers on 127.0.0.1, its workers forked and gone with it."""

from __future__ import annotations

import inspect
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import apache_beam as beam
import orjson
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from meshline.connectors import file
from meshline.connectors.file import FileSourceConfig, ReadFromFile
from meshline.errors import RunnerError
from meshline.events import each_event
from meshline.runners import RunnerSettings, direct, in_process_runner, listeners, make_runner
from meshline.runners.loopback import ALLOW_FLAG

ROOT = Path(__file__).resolve().parents[2]
# These tests read the run's sockets from /proc: without it they fail, they are not skipped.
assert listeners.supported(), "Linux /proc is needed to see where the direct runner listens"


def _options(mode: str, workers: int = 2) -> PipelineOptions:
    return PipelineOptions([f"--direct_num_workers={workers}", f"--direct_running_mode={mode}"])


class _Probe(beam.DoFn):
    """Records, from inside a worker, where every process of the run listens and which process it is."""

    def __init__(self, root: int, folder: str):
        self._root = root
        self._folder = folder

    def process(self, element):
        found = listeners.listeners(listeners.process_tree(self._root))
        record = {"pid": os.getpid(), "listeners": [[x.pid, x.protocol, x.host, x.port] for x in found]}
        Path(self._folder, f"{uuid.uuid4().hex}.json").write_text(json.dumps(record))
        yield element


@pytest.mark.parametrize("mode", ["multi_processing", "multi_threading"])
def test_the_runners_servers_listen_on_loopback_only(tmp_path: Path, mode: str):
    me = os.getpid()
    before = {(x.protocol, x.port) for x in listeners.listeners([me])}
    with beam.Pipeline(runner=in_process_runner(), options=_options(mode)) as p:
        _ = p | beam.Create(list(range(8))) | beam.Reshuffle() | beam.ParDo(_Probe(me, str(tmp_path)))
    records = [json.loads(f.read_text()) for f in tmp_path.glob("*.json")]
    assert len(records) == 8
    workers = {r["pid"] for r in records}
    if mode == "multi_processing":
        assert me not in workers and len(workers) == 2, workers  # two processes shared the work
    seen = {tuple(x) for r in records for x in r["listeners"]}
    new = {x for x in seen if (x[1], x[3]) not in before}
    # the runner's control, data, state and logging servers (and each worker's logging server)
    assert len({x for x in new if x[0] == me}) >= 4, new
    assert all(listeners.Listener(*x).loopback for x in new), new


def test_beam_alone_binds_every_interface():
    """Why :mod:`meshline.runners.direct` exists: if Beam stops binding ``[::]``, this says so."""
    from apache_beam.runners.portability import local_job_service
    from apache_beam.runners.portability.fn_api_runner import worker_handlers

    direct.install()
    beams_server = worker_handlers.GrpcServer.__mro__[1]
    beams_worker = local_job_service.SubprocessSdkWorker.__mro__[1]
    assert "add_insecure_port('[::]:0')" in inspect.getsource(beams_server.__init__)
    assert "add_insecure_port('[::]:0')" in inspect.getsource(beams_worker.run)
    assert direct.loopback_address("[::]:0") == "127.0.0.1:0"
    assert direct.loopback_address("0.0.0.0:80") == "127.0.0.1:80"
    assert direct.loopback_address("localhost:5") == "localhost:5"


def test_servers_beyond_loopback_stop_the_run_unless_allowed(monkeypatch, capsys):
    monkeypatch.setattr(direct, "_exposed", lambda ports: ["[::]:1234"])
    runner, _ = make_runner(RunnerSettings(name="direct"))
    refused = rf"listen on \[::\]:1234, beyond 127.0.0.1: .*{ALLOW_FLAG}"
    with (
        pytest.raises(RunnerError, match=refused),
        beam.Pipeline(runner=runner, options=_options("multi_threading")) as p,
    ):
        _ = p | beam.Create([1, 2]) | beam.Reshuffle() | beam.Map(lambda x: x)
    runner, _ = make_runner(RunnerSettings(name="direct", allow_exposed=True))
    with beam.Pipeline(runner=runner, options=_options("multi_threading")) as p:
        _ = p | beam.Create([1, 2]) | beam.Reshuffle() | beam.Map(lambda x: x)
    assert (
        f"warning: the direct runner's Fn API servers listen on [::]:1234, beyond 127.0.0.1 ({ALLOW_FLAG})"
        in (capsys.readouterr().err)
    )
    monkeypatch.undo()
    make_runner(RunnerSettings(name="direct"))  # the next run checks again, and refuses again


def test_a_number_of_workers_alone_means_worker_processes():
    added = direct.direct_options
    assert added([]) == []
    assert added(["--direct_num_workers=2"]) == ["--direct_running_mode=multi_processing"]
    assert added(["--direct_num_workers", "0"]) == ["--direct_running_mode=multi_processing"]  # one per core
    assert added(["--direct_num_workers=1"]) == []
    assert added(["--direct_num_workers=2", "--direct_running_mode=multi_threading"]) == []
    assert added(["--direct_num_workers=two"]) == []  # Beam says what is wrong with it
    runner, args = make_runner(RunnerSettings(name="direct", beam_args=["--direct_num_workers=2"]))
    assert args == ["--direct_running_mode=multi_processing"]
    zygote = runner.zygote  # started early, while this process has fewest threads
    assert zygote is not None and not zygote.closed
    del runner
    assert zygote.closed  # a runner that never ran takes its zygote with it
    # no longer refused: their servers bind loopback
    make_runner(RunnerSettings(name="direct", beam_args=["--direct_running_mode=multi_threading"]))


def test_watching_a_run_needs_its_workers_in_this_process(monkeypatch):
    from meshline import observe

    monkeypatch.setattr(observe, "ENABLED", True)  # --ui, --metrics-port, meshline tap
    with pytest.raises(RunnerError, match="--ui and tap watch the workers in this process"):
        make_runner(RunnerSettings(name="direct", beam_args=["--direct_num_workers=2"]))
    make_runner(RunnerSettings(name="direct", beam_args=["--direct_running_mode=multi_threading"]))


def _event(i: int) -> bytes:
    return orjson.dumps({"specversion": "1.0", "id": f"e{i}", "source": "s", "type": "t", "data": {"i": i}})


class _Record(beam.DoFn):
    """Appends ``(what, value, pid)`` to a file of its process (workers share no memory with the test)."""

    def __init__(self, folder: str, what: str):
        self._folder = folder
        self._what = what

    def process(self, element):
        value = element.id if self._what == "good" else [element.id, element.attributes["meshlineerror"]]
        with open(Path(self._folder, f"{os.getpid()}.jsonl"), "a") as f:
            f.write(json.dumps([self._what, value, os.getpid()]) + "\n")
        return ()


def test_one_file_is_read_by_both_workers_into_the_same_events(tmp_path: Path):
    """The file's byte ranges are shared between the workers; together they read what one worker reads."""
    # 20 MiB: three ranges of 8 MiB (file.SPLIT_MIN), shared 2:1
    lines = [_event(i) + b" " * 1000 for i in range(20_000)]
    lines[12_500] = b"{broken"
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    assert len(file._ranges(str(path), path.stat().st_size, "cloudevents")) == 3
    results = {}
    for workers in (1, 2):
        out = tmp_path / f"out-{workers}"
        out.mkdir()
        args = [f"--direct_num_workers={workers}"]
        with beam.Pipeline(
            runner=in_process_runner(), options=PipelineOptions(args + direct.direct_options(args))
        ) as p:
            events, dead = p | ReadFromFile(FileSourceConfig(path=str(path)), "src")
            _ = events | beam.FlatMap(each_event) | "Good" >> beam.ParDo(_Record(str(out), "good"))
            _ = dead | "Bad" >> beam.ParDo(_Record(str(out), "bad"))
        results[workers] = [
            json.loads(line) for f in out.glob("*.jsonl") for line in f.read_text().splitlines()
        ]
    one, two = results[1], results[2]
    assert sorted(v for w, v, _ in one if w == "good") == sorted(v for w, v, _ in two if w == "good")
    assert len([v for w, v, _ in two if w == "good"]) == 19_999
    bad = [v for w, v, _ in two if w == "bad"]
    assert bad == [v for w, v, _ in one if w == "bad"] and len(bad) == 1
    assert bad[0][0] == f"{path}:12501" and bad[0][1].startswith("line 12501: ")  # counted in its range
    assert {pid for *_, pid in one} == {os.getpid()}  # one worker: in this process
    readers = {pid for *_, pid in two}
    assert len(readers) == 2 and os.getpid() not in readers, readers


_RUN = """
import os, sys, time
from pathlib import Path
import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from meshline import cleanup
from meshline.runners import direct, in_process_runner

if sys.argv[2] == "started":
    direct._forkable = lambda: False

class Hold(beam.DoFn):
    def __init__(self, folder):
        self.folder = folder

    def process(self, n):
        part = Path(self.folder, f".part-{os.getpid()}-{n}.tmp")
        part.write_text("half-written")
        cleanup.register(lambda: part.unlink(missing_ok=True))
        Path(self.folder, f"worker-{os.getpid()}").write_text("")
        time.sleep(120)
        yield n

options = PipelineOptions(["--direct_num_workers=2", "--direct_running_mode=multi_processing"])
with beam.Pipeline(runner=in_process_runner(), options=options) as p:
    _ = p | beam.Create([1, 2]) | beam.Reshuffle() | beam.ParDo(Hold(sys.argv[1]))
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("how", ["forked", "started"])
def test_workers_end_with_the_run_and_remove_what_they_had_not_committed(tmp_path: Path, how: str):
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_RUN), str(tmp_path), how], cwd=ROOT, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 60
        while len(list(tmp_path.glob("worker-*"))) < 2:
            assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
            assert time.monotonic() < deadline, "the workers did not start"
            time.sleep(0.05)
        workers = [int(f.name.split("-")[1]) for f in tmp_path.glob("worker-*")]
        assert len(list(tmp_path.glob(".part-*"))) == 2
        os.kill(proc.pid, signal.SIGKILL)  # no handler, no cleanup of its own
        proc.wait()
        deadline = time.monotonic() + 10
        while any(_alive(w) for w in workers) or list(tmp_path.glob(".part-*")):
            assert time.monotonic() < deadline, (
                [w for w in workers if _alive(w)],
                list(tmp_path.glob(".part-*")),
            )
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_workers_ignore_ctrl_c_and_leave_stopping_to_the_meshline_process():
    from meshline.runners import direct_worker

    source = inspect.getsource(direct_worker._become_worker)
    assert "signal.SIGINT, signal.SIG_IGN" in source
    assert direct.worker_command(3).endswith(
        f"-m meshline.runners.direct_worker {os.getpid()} --from-zygote=3"
    )
