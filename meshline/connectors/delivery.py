"""Delivery rules every target shares (SPEC §5): retries with backoff, then dead letters.

A target classifies each failure as *transient* (connection errors, timeouts,
throttling, HTTP 429/5xx: retried) or *permanent* (the system rejected this one
record: dead-lettered at once). :class:`RetryPolicy` is the trigger's
``delivery`` (``retries``, ``backoff``); the compiler hands it to each target as
``BuildContext.delivery`` (the most generous policy of the triggers feeding it).

:func:`deliver_batch` is the loop batch APIs want (SQS ``SendMessageBatch``,
Elasticsearch ``_bulk``, Kafka delivery reports): send, retry only the items that
failed transiently, return the ones that finally failed with their reasons, so
the target can dead-letter exactly those.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from meshline.errors import DeliveryError, PermanentDeliveryError

__all__ = [
    "Failure",
    "PermanentError",
    "RetryPolicy",
    "TransientError",
    "deliver_batch",
    "reason",
]

T = TypeVar("T")
MAX_REASON = 1024


class TransientError(DeliveryError):
    """A failure worth retrying; ``retry_after`` (seconds) when the server said so."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(PermanentDeliveryError):
    """The system rejected the record; retrying cannot help."""


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """``retries`` after the first attempt; ``exponential`` or ``linear`` from ``delay`` up to ``max``."""

    retries: int = 3
    policy: str = "exponential"
    delay: float = 0.2
    max: float = 30.0

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ValueError(f"retries: must be >= 0, got {self.retries}")
        if self.policy not in ("exponential", "linear", "constant"):
            raise ValueError(f"policy: must be 'constant', 'linear' or 'exponential', got {self.policy!r}")

    @classmethod
    def of(cls, delivery: Any) -> RetryPolicy:
        """From a spec :class:`~meshline.spec.model.Delivery` (or ``None``: the defaults)."""
        if delivery is None:
            return cls()
        b = delivery.backoff
        return cls(retries=delivery.retries, policy=b.policy, delay=b.delay, max=b.max)

    def backoff(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based), with ±10% jitter.

        A server's ``Retry-After`` wins when it is longer, capped at ``max``.
        """
        if self.policy == "constant":  # SPEC §1: constant | linear | exponential
            base = self.delay
        elif self.policy == "linear":
            base = self.delay * attempt
        else:
            base = self.delay * (2 ** (attempt - 1))
        wait = min(base, self.max) * random.uniform(0.9, 1.1)
        if retry_after is not None and retry_after > wait:
            wait = retry_after
        return min(wait, self.max)

    def call(
        self,
        fn: Callable[[], T],
        *,
        is_transient: Callable[[BaseException], bool] = lambda e: isinstance(e, TransientError),
        sleep: Callable[[float], None] = time.sleep,
        on_retry: Callable[[BaseException], None] | None = None,
    ) -> T:
        """``fn()``, retried on transient errors; the last error is raised when retries run out."""
        attempt = 0
        while True:
            try:
                return fn()
            except Exception as e:
                if attempt >= self.retries or not is_transient(e):
                    raise
                attempt += 1
                if on_retry is not None:
                    on_retry(e)
                sleep(self.backoff(attempt, getattr(e, "retry_after", None)))


@dataclass(frozen=True)
class Failure:
    """One item of a batch that failed: ``transient`` ones are retried by :func:`deliver_batch`."""

    item: Any
    reason: str
    transient: bool = True
    retry_after: float | None = None


def deliver_batch(
    items: Sequence[T],
    send: Callable[[Sequence[T]], Sequence[Failure]],
    policy: RetryPolicy,
    *,
    is_transient: Callable[[BaseException], bool] = lambda e: isinstance(e, TransientError),
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[int], None] | None = None,
) -> list[tuple[T, str]]:
    """Send ``items``; retry what failed transiently; return ``(item, reason)`` for what finally failed.

    ``send`` returns the items that failed (a partial failure), or raises for the
    whole batch — then every item failed, transiently when ``is_transient(error)``.
    Items are never dropped: each one is either delivered or returned.
    """
    pending: Sequence[T] = items
    failed: list[tuple[T, str]] = []
    attempt = 0
    while pending:
        try:
            failures = list(send(pending))
        except Exception as e:
            transient = is_transient(e)
            failures = [Failure(i, reason(e), transient, getattr(e, "retry_after", None)) for i in pending]
        retry = [f for f in failures if f.transient]
        failed.extend((f.item, f.reason) for f in failures if not f.transient)
        if not retry:
            break
        if attempt >= policy.retries:
            failed.extend((f.item, f"{f.reason} (after {attempt + 1} attempts)") for f in retry)
            break
        attempt += 1
        if on_retry is not None:
            on_retry(len(retry))
        hint = max((f.retry_after for f in retry if f.retry_after is not None), default=None)
        sleep(policy.backoff(attempt, hint))
        pending = [f.item for f in retry]
    return failed


def reason(error: BaseException) -> str:
    """A one-line, bounded description of ``error`` for ``meshlineerror``."""
    text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    text = " ".join(text.split())
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"
