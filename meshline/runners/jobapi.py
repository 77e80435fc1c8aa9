"""The Job API client a portable runner (Prism, Flink) talks to, without a deadline on its streams.

Beam's ``JobServiceHandle.run`` opens the job's state and message streams with
``timeout=job_server_timeout`` (300 s by default, apache/beam#36517), and gRPC turns that
into a deadline for the whole stream. Where the preparation id is also the job id (Prism),
both streams end with ``DEADLINE_EXCEEDED`` five minutes into the run and the runner reports
a streaming integration as failed while it is still running. Requests keep their timeout;
streams that live as long as the job get none.
"""

from __future__ import annotations

from typing import Any

__all__ = ["StreamsWithoutDeadline", "job_service_handle"]


class StreamsWithoutDeadline:
    """A ``JobServiceStub`` whose ``GetStateStream``/``GetMessageStream`` ignore ``timeout``."""

    def __init__(self, stub: Any) -> None:
        self._stub = stub

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stub, name)

    def GetStateStream(self, request: Any, timeout: float | None = None, **kwargs: Any) -> Any:
        return self._stub.GetStateStream(request, **kwargs)

    def GetMessageStream(self, request: Any, timeout: float | None = None, **kwargs: Any) -> Any:
        return self._stub.GetMessageStream(request, **kwargs)


def job_service_handle(job_service: Any, options: Any, *, retain_unknown_options: bool = False) -> Any:
    """Beam's ``JobServiceHandle`` over :class:`StreamsWithoutDeadline`."""
    from apache_beam.runners.portability.portable_runner import JobServiceHandle

    return JobServiceHandle(
        StreamsWithoutDeadline(job_service), options, retain_unknown_options=retain_unknown_options
    )
