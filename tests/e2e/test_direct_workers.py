"""``meshline run … -- --direct_num_workers=2``: one file on two worker processes, as a user runs it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from meshline.runners import listeners

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]

SPEC = """\
apiVersion: meshline.dev/v1alpha1
kind: Integration
metadata: {{name: split}}
spec:
  sources: [{{name: in, type: file, config: {{path: "{src}"}}}}]
  transformations: [{{name: twice, type: jq, config: {{program: '.data.twice = (.data.n * 2)'}}}}]
  targets:
    - {{name: out, type: file, config: {{path: "{out}", format: jsonl}}}}
    - {{name: rejects, type: file, config: {{path: "{out}-rejects", format: jsonl}}}}
  triggers: [{{name: odd, filters: [{{jq: '.data.n % 2 == 1'}}], steps: [twice], target: out}}]
  deadLetter: rejects
"""


def _input(path: Path, n: int, broken: int) -> None:
    """``n`` events of ~1 KiB, line ``broken`` not JSON: 20,000 are ~20 MiB, three byte ranges."""
    with path.open("wb") as f:
        for i in range(n):
            if i + 1 == broken:
                f.write(b"{not json\n")
                continue
            event = {"specversion": "1.0", "id": f"e{i}", "source": "s", "type": "t", "data": {"n": i}}
            f.write(orjson.dumps({**event, "pad": "x" * 1000}) + b"\n")


def _records(folder: Path) -> list[dict]:
    return sorted(
        (json.loads(line) for f in folder.glob("part-*.jsonl") for line in f.read_text().splitlines()),
        key=lambda r: r["id"],
    )


def test_two_workers_write_what_one_writes(meshline, tmp_path: Path):
    src = tmp_path / "in.jsonl"
    _input(src, 20_000, broken=15_001)
    outputs = {}
    for workers in (1, 2):
        out = tmp_path / f"out{workers}"
        spec = tmp_path / f"split{workers}.yaml"
        spec.write_text(SPEC.format(src=src, out=out))
        args = ["run", str(spec)] + (["--", f"--direct_num_workers={workers}"] if workers > 1 else [])
        r = meshline(*args, timeout=300)
        assert r.returncode == 0, r.stderr
        assert "Traceback" not in r.stderr, r.stderr
        rows = {
            line.split()[1]: line.split()[2:] for line in r.stderr.splitlines() if line.startswith("target ")
        }
        assert rows["out"][:2] == ["10000", "10000"], r.stderr  # the table comes from the runner
        outputs[workers] = (_records(out), _records(Path(f"{out}-rejects")))
    (good1, bad1), (good2, bad2) = outputs[1], outputs[2]
    assert len(good2) == 10_000 and good1 == good2
    assert [(b["id"], b["meshlineerror"][:12]) for b in bad2] == [(f"{src}:15001", "line 15001: ")]
    assert [b["id"] for b in bad1] == [b["id"] for b in bad2]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "sigkill"])
def test_a_stopped_run_leaves_no_worker_and_no_temporary_file(tmp_path: Path, how: signal.Signals):
    assert listeners.supported(), "the run's processes are read from Linux /proc"
    src = tmp_path / "in.jsonl"
    _input(src, 300_000, broken=0)  # ~300 MB: a few seconds of work for two workers
    out = tmp_path / "out"
    spec = tmp_path / "split.yaml"
    spec.write_text(SPEC.format(src=src, out=out))
    exe = Path(sys.executable).parent / "meshline"
    proc = subprocess.Popen(
        [str(exe), "run", str(spec), "--", "--direct_num_workers=2"],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # Ctrl-C reaches every process of the run, as a terminal's does
    )
    try:
        deadline = time.monotonic() + 120
        while len(listeners.process_tree(proc.pid)) < 4 or not list(out.glob(".part-*")):
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "the workers did not start writing"
            time.sleep(0.05)
        tree = listeners.process_tree(proc.pid)  # meshline, the zygote, two workers
        if how == signal.SIGINT:
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.kill()
        proc.wait(30)
        stderr = proc.communicate()[1]
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in tree) or list(out.glob(".part-*")):
            assert time.monotonic() < deadline, ([p for p in tree if _alive(p)], list(out.glob(".part-*")))
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if how == signal.SIGINT:
        assert proc.returncode == 130, stderr
        assert "Traceback" not in stderr, stderr
        assert "split: interrupted; stopping" in stderr, stderr
