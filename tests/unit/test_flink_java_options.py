"""The job-server JVM's options: a bounded heap, the client compiler and slower Pekko ticks, unless the
user sets them."""

from __future__ import annotations

from meshline.runners.flink import DEFAULT_HEAP, DEFAULT_JIT, DEFAULT_TICK, java_options


def test_the_heap_is_bounded_and_the_jit_is_c1_by_default() -> None:
    assert java_options({}) == [DEFAULT_HEAP, DEFAULT_JIT, DEFAULT_TICK]


def test_the_users_options_are_passed_on_in_order_after_the_defaults() -> None:
    opts = java_options({"MESHLINE_FLINK_JAVA_OPTS": "-XX:+UseSerialGC '-Dname=a b'"})
    assert opts == [DEFAULT_HEAP, DEFAULT_JIT, DEFAULT_TICK, "-XX:+UseSerialGC", "-Dname=a b"]


def test_a_heap_the_user_sets_replaces_the_default() -> None:
    for given in ("-Xmx4g", "-XX:MaxRAMPercentage=50", "-XX:MaxHeapSize=2g"):
        assert java_options({"MESHLINE_FLINK_JAVA_OPTS": given}) == [DEFAULT_JIT, DEFAULT_TICK, given]


def test_compilers_the_user_chooses_replace_the_default() -> None:
    for given in ("-XX:TieredStopAtLevel=4", "-XX:-TieredCompilation", "-XX:+TieredCompilation", "-Xint"):
        assert java_options({"MESHLINE_FLINK_JAVA_OPTS": given}) == [DEFAULT_HEAP, DEFAULT_TICK, given]


def test_a_tick_the_user_sets_replaces_the_default() -> None:
    given = "-Dpekko.scheduler.tick-duration=10ms"
    assert java_options({"MESHLINE_FLINK_JAVA_OPTS": given}) == [DEFAULT_HEAP, DEFAULT_JIT, given]
