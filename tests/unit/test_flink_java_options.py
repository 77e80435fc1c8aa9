"""The job-server JVM's options: a bounded heap unless the user sets one."""

from __future__ import annotations

from meshline.runners.flink import DEFAULT_HEAP, java_options


def test_the_heap_is_bounded_by_default() -> None:
    assert java_options({}) == [DEFAULT_HEAP]


def test_the_users_options_are_passed_on_in_order_with_the_default_heap_first() -> None:
    opts = java_options({"MESHLINE_FLINK_JAVA_OPTS": "-XX:+UseSerialGC '-Dname=a b'"})
    assert opts == [DEFAULT_HEAP, "-XX:+UseSerialGC", "-Dname=a b"]


def test_a_heap_the_user_sets_replaces_the_default() -> None:
    for given in ("-Xmx4g", "-XX:MaxRAMPercentage=50", "-XX:MaxHeapSize=2g"):
        assert java_options({"MESHLINE_FLINK_JAVA_OPTS": given}) == [given]
