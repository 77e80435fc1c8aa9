"""``aws.sqs`` target: config and declaration (Beam transform: :mod:`meshline.connectors.aws.sqs_target`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from meshline.config import doc
from meshline.connectors.aws.common import AwsConnection
from meshline.connectors.late import Late
from meshline.registry import Component

__all__ = ["SQS_MAX_BYTES", "TARGET", "SqsTargetConfig"]

SQS_MAX_BYTES = 262_144


@dataclass(frozen=True, kw_only=True)
class _SqsTargetConfigFields:
    """The SQS target keys (listed first in the schema)."""

    queue_url: str = doc("the queue URL, e.g. https://sqs.us-east-1.amazonaws.com/123456789012/orders")
    mode: Literal["binary", "structured"] = doc(
        "binary: data as body, attributes as ce-* message attributes; structured: the JSON event as body",
        "binary",
    )
    message_group_id: str | None = doc(
        "FIFO queues: the event attribute holding the MessageGroupId (default: messagegroupid, else source)",
        None,
    )
    max_message_bytes: int = doc(
        "largest message (body + attributes) the queue takes; larger events are dead-lettered", SQS_MAX_BYTES
    )
    concurrency: int = doc("SendMessageBatch calls in flight at once (standard queues)", 4)


@dataclass(frozen=True, kw_only=True)
class SqsTargetConfig(AwsConnection, _SqsTargetConfigFields):
    """Send events to an Amazon SQS queue (standard or FIFO)."""

    def __post_init__(self) -> None:
        self._check_connection()
        if not self.queue_url.strip():
            raise ValueError("queue_url: must not be empty")
        if not 1 <= self.max_message_bytes <= 1_048_576:
            raise ValueError(
                f"max_message_bytes: must be between 1 and 1048576, got {self.max_message_bytes}"
            )
        if not 1 <= self.concurrency <= 64:
            raise ValueError(f"concurrency: must be between 1 and 64, got {self.concurrency}")


TARGET = Component(
    id="aws.sqs",
    kind="target",
    config=SqsTargetConfig,
    build=Late("meshline.connectors.aws.sqs_target:build"),
    description="Amazon SQS queue (standard or FIFO): SendMessageBatch, binary or structured CloudEvents.",
)
