"""bench/scale.py: what it counts, and the section it returns."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench import scale
from bench.scale import Measured, records_digest
from meshline.runners import listeners

ROOT = Path(__file__).resolve().parents[2]


def test_the_digest_of_records_ignores_their_order_not_their_number():
    a = [b'{"id":1}', b'{"id":2}', b'{"id":3}']
    assert records_digest(a) == records_digest(reversed(a))
    assert records_digest(a)[0] == 3
    assert records_digest(a + a[:1]) != records_digest(a)
    assert records_digest(a[:2]) != records_digest(a)


def test_tree_memory_sums_the_processes_of_the_run():
    assert listeners.supported(), "TreeMemory reads Linux /proc"
    child = (
        "b = bytearray(100 << 20)\\nfor i in range(0, len(b), 4096): b[i] = 1\\nimport time; time.sleep(1.5)"
    )
    grow = (
        "import subprocess, sys, time\n"
        "b = bytearray(150 << 20)\n"
        "for i in range(0, len(b), 4096): b[i] = 1\n"
        f"c = subprocess.Popen([sys.executable, '-c', '{child}'])\n"
        "time.sleep(1.5); c.wait()\n"
    )
    # In a process of its own: a test worker's other children (servers of other tests) are not
    # this run's, and TreeMemory counts every child of the process it runs in.
    probe = (
        "import subprocess, sys\n"
        "from bench.scale import TreeMemory\n"
        "with TreeMemory(interval=0.1) as memory:\n"
        f"    subprocess.run([sys.executable, '-c', {grow!r}], check=True)\n"
        "print(len(memory.processes), memory.peak_pss_kib, memory.peak_rss_kib)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    processes, pss, rss = map(int, done.stdout.split())
    assert processes >= 2
    assert 250 * 1024 <= pss < 400 * 1024, pss  # both at once, summed
    assert rss >= pss


def _run(variant: str, n: int, wall: float, rss: float, pss: float) -> Measured:
    return Measured(
        variant, n, wall, wall * 0.9, rss, pss, pss + 100, others=0.1 * wall, records=(n // 2, "x")
    )


def test_the_section_reports_ratios_of_speed_and_memory():
    runs = {
        ("1 worker", 1000): [_run("1 worker", 1000, 10.0, 250, 200), _run("1 worker", 1000, 12.0, 251, 201)],
        ("2 workers", 1000): [_run("2 workers", 1000, 5.0, 240, 300), _run("2 workers", 1000, 6.0, 240, 310)],
        ("1 worker", 10000): [
            _run("1 worker", 10000, 100.0, 252, 200),
            _run("1 worker", 10000, 100.0, 252, 200),
        ],
        ("2 workers", 10000): [
            _run("2 workers", 10000, 50.0, 240, 320),
            _run("2 workers", 10000, 55.0, 240, 330),
        ],
    }
    text = scale._markdown("Measured now.", "0.1 0.2 0.3", (1000, 10000), 2, runs, {1000: "500 records"})
    assert text.startswith("## Scale: ")
    # median events/s, wall and CPU, then the largest RSS and largest PSS sum of the rounds
    assert "| 2 workers | 10,000 | 191 | 52.5 | 47.2 | 240 | 330 (430) | " in text
    assert "- N = 1,000: 2 workers / 1 worker = 2.00x (wall events/s; round by round: 2.00x, 2.00x)" in text
    assert "- 1 worker: peak RSS at 10,000 / at 1,000 = 1.00x (252 / 251 MiB)" in text
    assert "- 2 workers: peak PSS of all processes at 10,000 / at 1,000 = 1.06x (330 / 310 MiB)" in text
    assert "| 1 worker | 1,000 | 92 | " in text  # median of 100 and 83.3 events/s
