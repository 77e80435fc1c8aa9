"""Looking for secret values where they must not be: pipeline protos, pickles, staged files.

:func:`needles` gives every form a secret may take once serialized (as is,
JSON-escaped, URL-encoded, base64 — also inside a basic-auth token);
:class:`Scanner` walks bytes recursively: protobuf messages field by field,
bz2/zlib/gzip streams decompressed, pickles opened with :mod:`pickletools`
(their string and bytes constants, without running them), base64 runs decoded,
tar and zip archives member by member.
"""

from __future__ import annotations

import base64
import binascii
import bz2
import gzip
import io
import json
import os
import pickletools
import re
import tarfile
import zipfile
import zlib
from pathlib import Path
from typing import Any
from urllib.parse import quote

__all__ = ["Scanner", "listening_ports", "needles"]

_B64 = re.compile(rb"[A-Za-z0-9+/_-]{16,}={0,2}")


def needles(values: dict[str, str], basic: tuple[str, str] | None = None) -> dict[bytes, str]:
    """Each byte string to look for → the name of the secret it reveals."""
    out: dict[bytes, str] = {}
    for name, value in values.items():
        forms = {value, json.dumps(value)[1:-1], quote(value, safe=""), quote(value)}
        for f in forms:
            out[f.encode()] = name
        out[base64.b64encode(value.encode())] = name
        out[base64.urlsafe_b64encode(value.encode())] = name
    if basic is not None:
        out[base64.b64encode(f"{basic[0]}:{basic[1]}".encode())] = "basic auth token"
    return out


class Scanner:
    """Collects ``(where, secret name)`` for every needle found in what it is given."""

    def __init__(self, needles: dict[bytes, str]):
        self.needles = needles
        self.found: list[tuple[str, str]] = []
        self.scanned = 0  # how many blobs were looked at (a scan that saw nothing proves nothing)
        self._seen: set[int] = set()

    def bytes(self, data: bytes, where: str, depth: int = 0) -> None:
        if depth > 8 or not data:
            return
        key = hash(data)
        if key in self._seen:
            return
        self._seen.add(key)
        self.scanned += 1
        for needle, name in self.needles.items():
            if needle in data:
                self.found.append((where, name))
        for name, opener in (("bz2", bz2.decompress), ("zlib", zlib.decompress), ("gzip", gzip.decompress)):
            try:
                inner = opener(data)
            except Exception:
                continue
            self.bytes(inner, f"{where}/{name}", depth + 1)
        self._pickle(data, where, depth)
        self._archive(data, where, depth)
        for m in _B64.finditer(data):
            chunk = m.group(0)
            for decode in (base64.b64decode, base64.urlsafe_b64decode):
                try:
                    inner = decode(chunk + b"=" * (-len(chunk) % 4))
                except (binascii.Error, ValueError):
                    continue
                if len(inner) >= 8:
                    self.bytes(inner, f"{where}/base64", depth + 1)

    def _pickle(self, data: bytes, where: str, depth: int) -> None:
        if data[:1] != b"\x80":
            return
        try:
            ops = list(pickletools.genops(io.BytesIO(data)))
        except Exception:
            return
        for _op, arg, _pos in ops:
            if isinstance(arg, str):
                self.bytes(arg.encode("utf-8", "surrogatepass"), f"{where}/pickle", depth + 1)
            elif isinstance(arg, (bytes, bytearray)):
                self.bytes(bytes(arg), f"{where}/pickle", depth + 1)

    def _archive(self, data: bytes, where: str, depth: int) -> None:
        if zipfile.is_zipfile(io.BytesIO(data)):
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                for name in z.namelist():
                    self.bytes(z.read(name), f"{where}!{name}", depth + 1)
            return
        try:
            with tarfile.open(fileobj=io.BytesIO(data)) as t:
                for member in t.getmembers():
                    f = t.extractfile(member)
                    if f is not None:
                        self.bytes(f.read(), f"{where}!{member.name}", depth + 1)
        except tarfile.TarError:
            pass

    def message(self, msg: Any, where: str) -> None:
        """A protobuf message, field by field (strings and bytes scanned, messages walked)."""
        self.bytes(msg.SerializeToString(), where)
        for field, value in msg.ListFields():
            values = value if field.label == field.LABEL_REPEATED else [value]
            for i, v in enumerate(values):
                here = f"{where}.{field.name}" + (f"[{i}]" if field.label == field.LABEL_REPEATED else "")
                if hasattr(v, "ListFields"):
                    self.message(v, here)
                elif isinstance(v, bytes):
                    self.bytes(v, here)
                elif isinstance(v, str):
                    self.bytes(v.encode(), here)
            if field.message_type is not None and field.message_type.GetOptions().map_entry:
                for k, v in value.items():
                    if hasattr(v, "ListFields"):
                        self.message(v, f"{where}.{field.name}[{k}]")
                    else:
                        self.bytes(str(v).encode(), f"{where}.{field.name}[{k}]")

    def tree(self, root: Path) -> None:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                self.bytes(path.read_bytes(), str(path))


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out = {pid}
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in out:
                out.add(child)
                todo.append(child)
    return out


def listening_ports(pid: int) -> set[int]:
    """TCP ports that ``pid`` or a descendant listens on (from /proc, no psutil)."""
    inodes: set[str] = set()
    for p in _descendants(pid):
        try:
            for fd in os.listdir(f"/proc/{p}/fd"):
                try:
                    target = os.readlink(f"/proc/{p}/fd/{fd}")
                except OSError:
                    continue
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if cols[3] == "0A" and cols[9] in inodes:  # LISTEN
                ports.add(int(cols[1].rsplit(":", 1)[1], 16))
    return ports
