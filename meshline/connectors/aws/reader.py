"""The SQS queue reader both AWS sources share (``aws.sqs`` and ``aws.s3`` notifications).

- **Long polling** (``WaitTimeSeconds``), 10 messages per ``ReceiveMessage``,
  and several receives in flight at once (``receivers``): a pull returns as soon
  as any receive answers; the others stay in flight for the next pull, and what
  they bring beyond a pull's need waits in a small buffer.
- **Visibility** is extended (``ChangeMessageVisibilityBatch``) for every message
  received but not yet deleted, so a slow bundle (or a slow commit) does not let
  SQS hand its messages to someone else; extension stops after ``max_extension``.
- **Deletion** (``DeleteMessageBatch``, 10 a call, calls in parallel) happens only
  in :meth:`SqsReader.ack`, which the unbounded source pattern calls from Beam's
  bundle finalizer: after the runner committed the bundle. Transient failures
  are retried; a receipt that is no longer valid (the message was redelivered)
  is logged and counted — that message comes back, at least once.
- On :meth:`close`, messages received but never handed to the pipeline are made
  visible again at once (visibility 0) rather than waiting out their timeout.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from meshline.connectors.aws.common import (
    AwsConnection,
    aws_error,
    client,
    error_code,
    is_transient,
    region_of,
)
from meshline.connectors.delivery import Failure, PermanentError, RetryPolicy, deliver_batch
from meshline.connectors.queues import Message

__all__ = ["Convert", "SqsReader", "shared_reader"]

_LOGGER = logging.getLogger(__name__)
MAX_RECEIVE = 10  # SQS's limit per ReceiveMessage / *Batch call
_GONE = frozenset({"ReceiptHandleIsInvalid", "InvalidParameterValue", "MessageNotInflight"})

# (queue ARN, raw SQS message) -> pulled messages; [] means "nothing to deliver" (acked at once).
Convert = Callable[[str, dict[str, Any]], list[Message]]


class SqsReader:
    """A :class:`~meshline.connectors.unbounded.QueueReader` over one SQS queue."""

    def __init__(
        self,
        conn: AwsConnection,
        queue_url: str,
        convert: Convert,
        *,
        receivers: int = 10,
        wait_seconds: int = 20,
        visibility_timeout: int | None = None,
        max_extension: float = 3600.0,
    ):
        self._url = queue_url
        self._convert = convert
        self._receivers = max(1, receivers)
        self._wait = max(0, min(20, wait_seconds))
        self._max_extension = max_extension
        region = region_of(conn, queue_url)
        self._sqs = client(conn, "sqs", region=region, pool=self._receivers + 12)
        self.region = region or self._sqs.meta.region_name
        attrs = self._queue_attributes()
        self.arn = attrs.get("QueueArn") or _computed_arn(queue_url, self.region)
        self.fifo = queue_url.endswith(".fifo") or attrs.get("FifoQueue") == "true"
        self._visibility = int(visibility_timeout or int(attrs.get("VisibilityTimeout", 30)))
        self._pool = ThreadPoolExecutor(max_workers=self._receivers + 10, thread_name_prefix="meshline-sqs")
        self._inflight: set[Future[list[dict[str, Any]]]] = set()
        self._buffer: deque[dict[str, Any]] = deque()
        self._lock = threading.Lock()
        self._held: dict[str, list[float]] = {}  # receipt -> [visible until, received at] (monotonic)
        self._stop = threading.Event()
        self._failed_deletes = 0
        self._pull_lock = threading.Lock()  # bundles of one source may run on several threads
        self._heartbeat = threading.Thread(
            target=self._extend_loop, name="meshline-sqs-visibility", daemon=True
        )
        self._heartbeat.start()

    # ------------------------------------------------------------------ setup helpers

    def backlog(self) -> list[tuple[dict[str, str], float]]:
        """Messages waiting in the queue (SQS's approximate count of visible ones): for
        ``meshline_source_backlog``. One ``GetQueueAttributes`` call; the metrics endpoint
        calls it at most every few seconds."""
        attrs = self._sqs.get_queue_attributes(
            QueueUrl=self._url, AttributeNames=["ApproximateNumberOfMessages"]
        ).get("Attributes", {})
        queue = self._url.rstrip("/").rsplit("/", 1)[-1]
        return [({"kind": "sqs_visible", "queue": queue}, float(attrs.get("ApproximateNumberOfMessages", 0)))]

    def _queue_attributes(self) -> dict[str, str]:
        try:
            return dict(
                self._sqs.get_queue_attributes(
                    QueueUrl=self._url, AttributeNames=["QueueArn", "VisibilityTimeout", "FifoQueue"]
                ).get("Attributes", {})
            )
        except Exception as e:
            if error_code(e) in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
                raise PermanentError(f"SQS queue {self._url} does not exist") from None
            _LOGGER.warning(
                "cannot read the attributes of %s (%s); using defaults", self._url, error_code(e) or e
            )
            return {}

    # ------------------------------------------------------------------ receiving

    def _receive(self) -> list[dict[str, Any]]:
        try:
            response = self._sqs.receive_message(
                QueueUrl=self._url,
                MaxNumberOfMessages=MAX_RECEIVE,
                WaitTimeSeconds=self._wait,
                VisibilityTimeout=self._visibility,
                MessageAttributeNames=["All"],
                MessageSystemAttributeNames=["All"],
            )
        except Exception as e:
            if not is_transient(e):
                raise aws_error(e, f"receiving from {self._url}") from None
            _LOGGER.warning("receiving from %s failed, will retry: %s", self._url, aws_error(e, "receive"))
            time.sleep(1.0)
            return []
        messages = list(response.get("Messages", ()))
        now = time.monotonic()
        with self._lock:
            for m in messages:
                self._held[m["ReceiptHandle"]] = [now + self._visibility, now]
        return messages

    def pull(self, max_messages: int, timeout: float) -> Sequence[Message]:
        """Up to ``max_messages``; waits at most ``timeout`` seconds (0: only what has arrived).

        Receives long-poll in the background, so a short ``timeout`` loses nothing:
        what a receive brings later is buffered for the next pull.
        """
        with self._pull_lock:
            return self._pull(max_messages, timeout)

    def _pull(self, max_messages: int, timeout: float) -> list[Message]:
        deadline = time.monotonic() + timeout
        while len(self._buffer) < max_messages:
            missing = max_messages - len(self._buffer)
            wanted = min(self._receivers, math.ceil(missing / MAX_RECEIVE))
            while len(self._inflight) < wanted:
                self._inflight.add(self._pool.submit(self._receive))
            left = deadline - time.monotonic()
            if not self._buffer and left > 0:
                wait(self._inflight, timeout=left, return_when=FIRST_COMPLETED)
            for f in [f for f in self._inflight if f.done()]:
                self._inflight.discard(f)
                self._buffer.extend(f.result())  # a permanent error (no queue, no access) fails the bundle
            # A receive whose long poll ran out came back empty: wait on (the whole timeout), so
            # that an idle source's pull is one long wait, not a return every few seconds.
            if self._buffer or time.monotonic() >= deadline:
                break
        return self._hand_out(max_messages)

    def _hand_out(self, n: int) -> list[Message]:
        out: list[Message] = []
        skip: list[str] = []
        while self._buffer and len(out) < n:
            raw = self._buffer.popleft()
            converted = self._convert(self.arn, raw)
            if converted:
                out.extend(converted)
            else:
                skip.append(raw["ReceiptHandle"])
        if skip:
            self.ack(skip)  # nothing reached the pipeline from these: nothing to wait for
        return out

    # ------------------------------------------------------------------ acknowledging

    def ack(self, ack_ids: Sequence[str]) -> None:
        receipts = list(
            dict.fromkeys(a for a in ack_ids if a)
        )  # unique, in order; "" marks a partial message
        if not receipts:
            return
        with self._lock:
            for r in receipts:
                self._held.pop(r, None)
        chunks = [receipts[i : i + MAX_RECEIVE] for i in range(0, len(receipts), MAX_RECEIVE)]
        if len(chunks) == 1:
            self._delete(chunks[0])
        else:
            for f in [self._pool.submit(self._delete, c) for c in chunks]:
                f.result()

    def _delete(self, receipts: list[str]) -> None:
        def send(items: Sequence[str]) -> list[Failure]:
            entries = [{"Id": str(i), "ReceiptHandle": r} for i, r in enumerate(items)]
            response = self._sqs.delete_message_batch(QueueUrl=self._url, Entries=entries)
            out = []
            for f in response.get("Failed", ()):
                text = f"{f.get('Code')}: {f.get('Message', '')}"
                transient = not f.get("SenderFault") and f.get("Code") not in _GONE
                out.append(Failure(items[int(f["Id"])], text, transient))
            return out

        failed = deliver_batch(
            receipts, send, RetryPolicy(retries=5, delay=0.2, max=5.0), is_transient=is_transient
        )
        if failed:
            self._failed_deletes += len(failed)
            _LOGGER.warning(
                "%d message(s) of %s could not be deleted and will be delivered again (at least once): %s",
                len(failed),
                self._url,
                failed[-1][1],
            )

    # ------------------------------------------------------------------ visibility

    def _extend_loop(self) -> None:
        period = max(0.5, min(10.0, self._visibility / 4))
        while not self._stop.wait(period):
            try:
                self._extend_due()
            except Exception as e:  # never kill the heartbeat; the next round tries again
                _LOGGER.warning("extending message visibility on %s failed: %s", self._url, e)

    def _extend_due(self) -> None:
        now = time.monotonic()
        margin = max(2.0, self._visibility / 2)
        with self._lock:
            due = [r for r, (until, since) in self._held.items() if until - now < margin]
            expired = [r for r in due if now - self._held[r][1] > self._max_extension]
            for r in expired:
                del self._held[r]
            due = [r for r in due if r not in expired]
        if expired:
            _LOGGER.warning(
                "%d message(s) of %s held longer than max_extension; letting SQS redeliver them",
                len(expired),
                self._url,
            )
        for i in range(0, len(due), MAX_RECEIVE):
            chunk = due[i : i + MAX_RECEIVE]
            self._change_visibility(chunk, self._visibility)
            with self._lock:
                for r in chunk:
                    if r in self._held:
                        self._held[r][0] = time.monotonic() + self._visibility

    def _change_visibility(self, receipts: list[str], seconds: int) -> None:
        entries = [
            {"Id": str(i), "ReceiptHandle": r, "VisibilityTimeout": seconds} for i, r in enumerate(receipts)
        ]
        response = self._sqs.change_message_visibility_batch(QueueUrl=self._url, Entries=entries)
        gone = [receipts[int(f["Id"])] for f in response.get("Failed", ()) if f.get("Code") in _GONE]
        if gone:
            with self._lock:
                for r in gone:
                    self._held.pop(r, None)

    # ------------------------------------------------------------------ closing

    def close(self) -> None:
        with self._pull_lock:
            self._close()

    def _close(self) -> None:
        self._stop.set()
        unclaimed = [m["ReceiptHandle"] for m in self._buffer]
        self._buffer.clear()
        for f in list(self._inflight):
            try:
                unclaimed += [m["ReceiptHandle"] for m in f.result(timeout=self._wait + 30)]
            except Exception:
                pass
        self._inflight.clear()
        with self._lock:
            for r in unclaimed:
                self._held.pop(r, None)
        try:
            for i in range(0, len(unclaimed), MAX_RECEIVE):
                self._change_visibility(unclaimed[i : i + MAX_RECEIVE], 0)  # visible again at once
        except Exception as e:
            _LOGGER.info("could not release %d unread message(s) of %s: %s", len(unclaimed), self._url, e)
        self._pool.shutdown(wait=False)
        self._sqs.close()


def _computed_arn(queue_url: str, region: str) -> str:
    from meshline.connectors.aws.common import queue_arn

    return queue_arn(queue_url, region)


# --------------------------------------------------------------------------- one reader per source


_SHARED: dict[Any, list[Any]] = {}  # key -> [reader, users]
_SHARED_LOCK = threading.Lock()


class _SharedHandle:
    """A DoFn instance's view of the process-wide reader of its source; the last close closes it."""

    def __init__(self, key: Any, reader: SqsReader):
        self._key = key
        self._reader = reader
        self._closed = False

    def pull(self, max_messages: int, timeout: float) -> Sequence[Message]:
        return self._reader.pull(max_messages, timeout)

    def ack(self, ack_ids: Sequence[str]) -> None:
        self._reader.ack(ack_ids)

    def backlog(self) -> list[tuple[dict[str, str], float]]:
        return self._reader.backlog()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with _SHARED_LOCK:
            entry = _SHARED.get(self._key)
            if entry is None or entry[0] is not self._reader:
                return
            entry[1] -= 1
            if entry[1] > 0:
                return
            del _SHARED[self._key]
        self._reader.close()


def shared_reader(key: Any, make: Callable[[], SqsReader]) -> _SharedHandle:
    """The reader for ``key`` in this process (created by ``make`` on first use)."""
    with _SHARED_LOCK:
        entry = _SHARED.get(key)
        if entry is None:
            entry = _SHARED[key] = [make(), 0]
        entry[1] += 1
        return _SharedHandle(key, entry[0])
