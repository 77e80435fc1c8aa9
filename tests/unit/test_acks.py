"""meshline.connectors.acks: acknowledgements registered with a bundle and not yet run."""

from __future__ import annotations

import gc
import threading
import time

from meshline.connectors import acks


class Finalizer:
    def __init__(self) -> None:
        self.callbacks: list = []

    def register(self, fn) -> None:
        self.callbacks.append(fn)


def test_a_callback_is_outstanding_until_it_has_run() -> None:
    base = acks.outstanding()
    done: list[int] = []
    f = Finalizer()
    acks.register(f, lambda: done.append(1))
    acks.register(f, lambda: done.append(2))
    assert acks.outstanding() == base + 2
    f.callbacks[0]()
    assert acks.outstanding() == base + 1 and done == [1]
    f.callbacks[1]()
    assert acks.outstanding() == base and done == [1, 2]


def test_a_dropped_bundles_callbacks_stop_counting() -> None:
    base = acks.outstanding()
    f = Finalizer()
    acks.register(f, lambda: None)
    assert acks.outstanding() == base + 1
    del f  # the SDK discards a failed bundle, and its callbacks with it
    gc.collect()
    assert acks.outstanding() == base


def test_wait_returns_once_a_slow_acknowledgement_has_finished() -> None:
    f = Finalizer()
    started = threading.Event()

    def slow() -> None:
        started.set()
        time.sleep(0.3)  # a commit's round trip

    acks.register(f, slow)
    t = threading.Thread(target=f.callbacks[0])
    t.start()
    started.wait(5)
    assert acks.outstanding() >= 1  # running counts
    assert acks.wait(10) == 0
    t.join()


def test_wait_gives_up_and_says_how_many_never_came() -> None:
    f = Finalizer()
    acks.register(f, lambda: None)
    t0 = time.monotonic()
    assert acks.wait(0.2) >= 1
    assert time.monotonic() - t0 < 5
    f.callbacks[0]()


def _bundle(ok: bool, *positions: int, key: str = "t") -> tuple[Finalizer, list[int]]:
    """One bundle as the SDK worker runs it: positions registered, then finished ok or not."""
    ran: list[int] = []
    f = Finalizer()
    acks.bundle_started()
    for p in positions:
        acks.register(f, lambda p=p: ran.append(p), position=(key, p))
    acks.bundle_finished(ok)
    return f, ran


def test_settle_runs_the_highest_position_of_finished_bundles_flink_never_asked_for() -> None:
    f1, ran1 = _bundle(True, 10, key="settle-a")
    f2, ran2 = _bundle(True, 20, key="settle-a")
    del f1, f2  # Flink closed the connection: the worker dropped both bundles unfinalized
    gc.collect()
    assert acks.settle() == 1
    assert ran1 == [] and ran2 == [20]  # 20 covers 10: one commit
    assert acks.settle() == 0


def test_settle_never_runs_a_failed_bundles_position() -> None:
    f, ran = _bundle(False, 30, key="settle-b")
    assert acks.settle() == 0 and ran == []
    assert acks.outstanding() >= 1  # still counted until the SDK drops it
    del f
    gc.collect()


def test_settle_skips_what_the_runner_already_finalized() -> None:
    f, ran = _bundle(True, 40, key="settle-c")
    f.callbacks[0]()  # the runner's finalize request came
    assert ran == [40]
    assert acks.settle() == 0 and ran == [40]


def test_a_lower_position_is_covered_by_a_higher_one_that_ran() -> None:
    base = acks.outstanding()
    low, _ = _bundle(True, 50, key="settle-d")
    high, ran = _bundle(True, 60, key="settle-d")
    high.callbacks[0]()
    assert ran == [60]
    assert acks.outstanding() == base  # 50 needs no commit of its own any more
    assert acks.wait(0.1) == 0
    assert acks.settle() == 0
    del low


def test_positions_of_one_key_never_run_backwards_or_at_once() -> None:
    """Flink asks for two bundles' commits at once; the broker keeps the one that lands last."""
    committed: list[int] = []
    inside = threading.Event()
    release = threading.Event()

    def commit(offset: int) -> None:
        if offset == 10:
            inside.set()
            release.wait(5)  # the commit of 10 is slow ...
        committed.append(offset)

    f = Finalizer()
    acks.register(f, lambda: commit(10), position=("order", 10))
    acks.register(f, lambda: commit(19), position=("order", 19))
    t = threading.Thread(target=f.callbacks[0])
    t.start()
    inside.wait(5)
    u = threading.Thread(target=f.callbacks[1])  # ... and 19's request comes meanwhile
    u.start()
    time.sleep(0.1)
    assert committed == []  # 19 waits for 10
    release.set()
    t.join(5)
    u.join(5)
    assert committed == [10, 19]
    f.callbacks[0]()  # asked again: 10 is covered by 19
    assert committed == [10, 19]
