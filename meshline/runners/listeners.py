"""Which addresses a process listens on, read from Linux's ``/proc`` (no psutil).

A socket a process holds shows as ``/proc/PID/fd/N -> socket:[INODE]``; the tables of
its network namespace, ``/proc/PID/net/{tcp,tcp6,udp,udp6}``, give each inode's local
address and state. A TCP socket in state LISTEN, or a bound UDP socket that is not
connected, accepts from anyone its address lets in: :attr:`Listener.loopback` says
whether that is only this machine.

:func:`process_tree` finds a process's descendants (the guard shim, Prism, the Flink
JVM and whatever they start) by their parent pid. Elsewhere than Linux
:func:`supported` is false and nothing here can be used.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Listener", "exposed", "listeners", "process_tree", "socket_inodes", "supported"]

# /proc/net/{tcp,udp}* "st" column: TCP_LISTEN; for UDP, TCP_CLOSE marks an unconnected socket.
_TCP_LISTEN = "0A"
_UDP_UNCONNECTED = "07"
_TABLES = (("tcp", _TCP_LISTEN), ("tcp6", _TCP_LISTEN), ("udp", _UDP_UNCONNECTED), ("udp6", _UDP_UNCONNECTED))


@dataclass(frozen=True, order=True)
class Listener:
    """One listening socket: the process holding it, the protocol and the local address."""

    pid: int
    protocol: str  # "tcp" or "udp"
    host: str  # as bound: "127.0.0.1", "::", "::ffff:127.0.0.1", "0.0.0.0"
    port: int

    @property
    def loopback(self) -> bool:
        """Whether only this machine can reach it (127.0.0.0/8, ::1, or IPv4-mapped 127.x)."""
        address = ipaddress.ip_address(self.host)
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return address.is_loopback

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def __str__(self) -> str:
        return f"{self.protocol} {self.address}"


def supported() -> bool:
    """Whether this platform exposes sockets the way this module reads them (Linux ``/proc``)."""
    return sys.platform.startswith("linux") and os.path.isfile("/proc/self/net/tcp")


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its living descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                # "PID (COMM) STATE PPID ...": COMM may hold spaces and parentheses.
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while we looked
            continue
        if fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, ()))
    return tree


def _socket_inodes(pid: int) -> set[str]:
    inodes: set[str] = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return inodes
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def socket_inodes(pids: Iterable[int]) -> frozenset[str]:
    """The inodes of every socket the processes ``pids`` hold: cheap, unlike reading the tables."""
    return frozenset(inode for pid in pids for inode in _socket_inodes(pid))


def _host(hex_address: str) -> str:
    """The address of a /proc/net table: 32-bit words in host byte order, printed as hex."""
    raw = bytes.fromhex(hex_address)
    if sys.byteorder == "little":
        raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    address = ipaddress.ip_address(raw)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return f"::ffff:{address.ipv4_mapped}"
    return str(address)


def _table(pid: int, name: str, state: str) -> dict[str, tuple[str, int]]:
    """inode -> (host, port) of the sockets in ``state`` in ``pid``'s namespace table ``name``."""
    found: dict[str, tuple[str, int]] = {}
    try:
        with open(f"/proc/{pid}/net/{name}", encoding="ascii") as f:
            next(f, None)  # the header
            for line in f:
                cols = line.split()
                if len(cols) < 10 or cols[3] != state:
                    continue
                hex_host, _, hex_port = cols[1].partition(":")
                port = int(hex_port, 16)
                if port:
                    found[cols[9]] = (_host(hex_host), port)
    except OSError:
        pass
    return found


def listeners(pids: Iterable[int]) -> list[Listener]:
    """The listening sockets the processes ``pids`` hold, sorted; processes that are gone are skipped."""
    found: set[Listener] = set()
    tables: dict[str, list[tuple[str, dict[str, tuple[str, int]]]]] = {}  # per network namespace
    for pid in pids:
        inodes = _socket_inodes(pid)
        if not inodes:
            continue
        try:
            namespace = os.readlink(f"/proc/{pid}/ns/net")
        except OSError:
            continue
        if namespace not in tables:
            tables[namespace] = [(name.rstrip("6"), _table(pid, name, state)) for name, state in _TABLES]
        for protocol, table in tables[namespace]:
            for inode in inodes & table.keys():
                host, port = table[inode]
                found.add(Listener(pid, protocol, host, port))
    return sorted(found)


def exposed(pids: Iterable[int]) -> list[Listener]:
    """The listeners of ``pids`` that other machines can reach."""
    return [listener for listener in listeners(pids) if not listener.loopback]
