"""Raw-socket HTTP for webhook tests: what a hostile or broken client really sends, byte for byte."""

from __future__ import annotations

import socket
import time

from tests.harness import free_port

__all__ = ["closed_by_server", "connect", "free_port", "read_reply", "still_open", "trickle"]


def connect(port: int, timeout: float = 10.0) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.settimeout(timeout)
    return s


def read_reply(sock: socket.socket, head: bool = False) -> tuple[int, dict[str, str], bytes]:
    """(status, {lower-case name: value}, body) of the next reply; raises TimeoutError if none comes.

    ``head``: the reply to a HEAD request, which has no body whatever its Content-Length says.
    """
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a complete reply: {data!r}")
        data += chunk
    top, _, rest = data.partition(b"\r\n\r\n")
    lines = top.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = 0 if head else int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return status, headers, rest[:length]


def closed_by_server(sock: socket.socket, deadline: float = 30.0) -> bool:
    """True once the server has closed the connection (EOF or reset), polling until ``deadline`` s."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        sock.settimeout(max(0.01, min(1.0, end - time.monotonic())))
        try:
            if sock.recv(65536) == b"":
                return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except TimeoutError:
            continue
    return False


def still_open(sock: socket.socket) -> bool:
    """True if the server has neither closed the connection nor sent anything on it."""
    sock.setblocking(False)
    try:
        sock.recv(1)  # EOF or a reply: either way the server did something with it
        return False
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.setblocking(True)


def trickle(sock: socket.socket, data: bytes, every: float) -> tuple[int, bytes]:
    """Send ``data`` a byte every ``every`` s until the server closes the connection.

    Returns (bytes sent, bytes received). The gap between bytes is short, so only a
    deadline on the whole head or body (not an idle timeout) can cut such a client off.
    """
    got = b""
    for i in range(len(data)):
        try:
            sock.sendall(data[i : i + 1])
        except OSError:
            return i, got
        sock.settimeout(every)
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    return i + 1, got
                got += chunk
        except TimeoutError:
            continue
        except OSError:
            return i + 1, got
    return len(data), got
