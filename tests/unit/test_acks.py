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


def test_a_lower_position_is_covered_by_a_higher_one_that_ran() -> None:
    base = acks.outstanding()
    f = Finalizer()
    ran: list[int] = []
    acks.register(f, lambda: ran.append(50), position=("cover", 50))
    acks.register(f, lambda: ran.append(60), position=("cover", 60))
    f.callbacks[1]()
    assert acks.outstanding() == base  # 50 needs no commit of its own any more
    assert acks.wait(0.1) == 0
    f.callbacks[0]()  # asked for late: nothing runs
    assert ran == [60]
