"""HTTP/1.1 request framing for the webhook's server: a strict head parser and body readers.

h11 parses the request line and header fields; the checks around it refuse
what h11, another parser or a proxy in front could read differently (the
server's docstring lists them). Chunked bodies are decoded here, strictly:
h11 accepts a bare LF and obsolete line folding in the trailer section.
"""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import h11

__all__ = [
    "HEAD_END",
    "MAX_HEAD_BYTES",
    "READ_SIZE",
    "Conn",
    "Dropped",
    "Handler",
    "Limits",
    "Reject",
    "Request",
    "Response",
    "parse_head",
]

MAX_HEAD_BYTES = 16384
MAX_HEADERS = 100
READ_SIZE = 65536

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_DIGITS = re.compile(rb"[0-9]{1,18}")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,15}")
_CHUNK_EXT = re.compile(rb"(;[\x21-\x7e\t ]*)?")  # extensions are ignored; no CTLs in them
HEAD_END = re.compile(rb"\n\r?\n")
_ABSOLUTE = re.compile(r"https?://[^/?#]+", re.IGNORECASE)
# Fields a request may carry once at most: a second one is ambiguous (which one counts?).
_SINGLE = frozenset({b"host", b"authorization", b"content-type", b"content-length", b"transfer-encoding"})


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int
    header_timeout: float
    body_timeout: float
    keepalive_timeout: float
    max_connections: int
    max_in_flight: int


@dataclass
class Response:
    status: int
    text: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    close: bool = False
    content_type: str = "text/plain; charset=utf-8"


class Reject(Exception):
    """A request refused by the server itself: the reply, and the kind counted."""

    def __init__(self, status: int, kind: str, text: str, headers: dict[str, str] | None = None):
        super().__init__(text)
        self.response = Response(status, text, headers or {}, close=True)
        self.kind = kind


class Dropped(Exception):
    """The client closed the connection in the middle of a request."""


class Conn:
    __slots__ = ("accepted_at", "buf", "evicted", "fresh", "reader", "sock", "writer")

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    def __init__(self, sock: socket.socket, accepted_at: float):
        self.sock = sock
        self.buf = bytearray()
        self.accepted_at = accepted_at
        self.evicted = False
        self.fresh = True  # no request read yet

    def abort(self) -> None:
        """Close at once (no reply), whether or not the connection's task has started."""
        writer = getattr(self, "writer", None)
        if writer is not None:
            writer.transport.abort()
        else:
            self.sock.close()

    async def fill(self) -> None:
        try:
            data = await self.reader.read(READ_SIZE)
        except ConnectionError:
            data = b""
        if not data:
            raise Dropped()
        self.buf += data

    async def read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            await self.fill()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    async def read_line(self, limit: int) -> bytes:
        """One CRLF-terminated line (without it); a bare LF or CR, or a longer line, is a 400."""
        start = 0
        while True:
            i = self.buf.find(b"\n", start)
            if i >= 0:
                break
            if len(self.buf) > limit:
                raise Reject(400, "bad_request", "chunk line too long")
            start = len(self.buf)
            await self.fill()
        if i == 0 or self.buf[i - 1] != 0x0D:
            raise Reject(400, "bad_request", "bare LF in chunked framing")
        line = bytes(self.buf[: i - 1])
        del self.buf[: i + 1]
        if b"\r" in line or b"\x00" in line:
            raise Reject(400, "bad_request", "bare CR or NUL in chunked framing")
        return line


class Request:
    """One request head; :meth:`body` reads the body within the limits (raises to refuse it)."""

    __slots__ = ("_conn", "_limits", "_state", "headers", "keep_alive", "method", "path", "target")

    def __init__(
        self,
        limits: Limits,
        conn: Conn,
        method: str,
        target: str,
        headers: dict[str, str],
        keep_alive: bool,
    ):
        self._conn = conn
        self._limits = limits
        self.method = method
        self.target = target
        self.path = target.split("?", 1)[0]
        self.headers = headers  # lower-case names; latin-1 values
        self.keep_alive = keep_alive
        # "none": no body; "unread": a body not read yet; "read": read to its end
        self._state = "unread" if ("content-length" in headers or "transfer-encoding" in headers) else "none"
        if headers.get("content-length") == "0":
            self._state = "none"

    @property
    def body_pending(self) -> bool:
        return self._state == "unread"

    async def body(self) -> bytes:
        if self._state != "unread":
            return b""
        limit = self._limits.max_body_bytes
        chunked = "transfer-encoding" in self.headers
        length = 0 if chunked else int(self.headers["content-length"])
        if length > limit:
            raise Reject(413, "body_too_large", f"body of {length} bytes is over the limit of {limit}")
        conn = self._conn
        if not chunked and len(conn.buf) >= length:  # it came with the head: nothing to wait for
            self._state = "read"
            return await conn.read_exact(length)
        if self.headers.get("expect") == "100-continue" and not conn.buf:
            conn.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        try:
            async with asyncio.timeout(self._limits.body_timeout):
                body = await self._chunked(limit) if chunked else await conn.read_exact(length)
        except TimeoutError:
            raise Reject(408, "body_timeout", "body not received in time") from None
        self._state = "read"
        return body

    async def _chunked(self, limit: int) -> bytes:
        conn = self._conn
        out = bytearray()
        while True:
            line = await conn.read_line(1024)
            size_text = line.partition(b";")[0]
            if not _HEX.fullmatch(size_text) or not _CHUNK_EXT.fullmatch(line[len(size_text) :]):
                raise Reject(400, "bad_request", "bad chunk size line")
            size = int(size_text, 16)
            if size == 0:
                if await conn.read_line(1024) != b"":
                    raise Reject(400, "bad_request", "trailer fields are not accepted")
                return bytes(out)
            if len(out) + size > limit:
                raise Reject(413, "body_too_large", f"body over the limit of {limit} bytes")
            out += await conn.read_exact(size)
            if await conn.read_exact(2) != b"\r\n":
                raise Reject(400, "bad_request", "chunk not followed by CRLF")


Handler = Callable[[Request], Awaitable[Response]]


def parse_head(raw: bytes) -> tuple[str, str, str, dict[str, str]]:
    """(method, target, version, {lower-case name: value}) of a head ending in CRLF CRLF; strict."""
    if b"\x00" in raw:
        raise Reject(400, "bad_request", "NUL in the request head")
    crlf = raw.count(b"\r\n")
    if raw.count(b"\n") != crlf or raw.count(b"\r") != crlf:
        raise Reject(400, "bad_request", "bare LF or CR in the request head")
    lines = raw[:-4].split(b"\r\n")
    if len(lines) > MAX_HEADERS + 1:
        raise Reject(431, "head_too_large", "too many header fields")
    # Framing is judged on the raw lines: h11 folds a repeated Content-Length of the same value
    # (and a list "5, 5") into one and lets Transfer-Encoding win over Content-Length; each is
    # a request-smuggling ingredient behind a proxy that reads the message differently.
    cl = te = None
    seen: set[bytes] = set()
    for line in lines[1:]:
        if line.startswith((b" ", b"\t")):
            raise Reject(400, "bad_request", "obsolete line folding in a header field")
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.fullmatch(name):
            raise Reject(400, "bad_request", "malformed header field (name, or whitespace before ':')")
        name = name.lower()
        if name in seen and (name in _SINGLE or name.startswith(b"ce-")):
            raise Reject(400, "bad_request", f"repeated {name.decode()} header field")
        seen.add(name)
        if name == b"content-length":
            cl = value.strip(b" \t")
        elif name == b"transfer-encoding":
            te = value.strip(b" \t")
    h = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES + 1)
    h.receive_data(raw)
    try:
        event = h.next_event()
    except h11.RemoteProtocolError:
        raise Reject(400, "bad_request", "malformed request head") from None
    if type(event) is not h11.Request:  # pragma: no cover - a complete head always gives a Request
        raise Reject(400, "bad_request", "malformed request head")
    version = event.http_version.decode()
    if version not in ("1.1", "1.0"):
        raise Reject(505, "bad_request", "only HTTP/1.1 and HTTP/1.0 are served")
    if te is not None:
        if te.lower() != b"chunked":
            raise Reject(400, "bad_request", "Transfer-Encoding other than 'chunked'")
        if cl is not None:
            raise Reject(400, "bad_request", "both Content-Length and Transfer-Encoding")
        if version == "1.0":
            raise Reject(400, "bad_request", "Transfer-Encoding in an HTTP/1.0 request")
    if cl is not None and not _DIGITS.fullmatch(cl):
        raise Reject(400, "bad_request", "Content-Length is not a plain number")
    target = event.target.decode("ascii", "replace")
    if _ABSOLUTE.match(target):  # absolute-form, which a server must accept (RFC 9112 3.2.2): its path
        target = "/" + target.split("/", 3)[3] if target.count("/") >= 3 else "/"
    elif not (target.startswith("/") or (target == "*" and event.method == b"OPTIONS")):
        raise Reject(400, "bad_request", "request target must be a path")
    headers: dict[str, str] = {}
    for n, v in event.headers:
        key, text = n.decode("latin-1"), v.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return event.method.decode("ascii"), target, version, headers
