"""B4 file → exact filter → elasticsearch target (_bulk) on an OpenSearch 2.19 node.

Run alone: ``.venv/bin/python -m bench.b4 [--small N --large N --repeat R]``.

Variants, same input, same node, same run:

- ``meshline``: ``meshline run`` of file → ``exact`` filter on type → the
  ``elasticsearch`` target (one ``_bulk`` request per 1,000 documents);
- ``python loop``: a plain loop that parses each line with orjson, applies the
  same filter, builds the same ``_bulk`` body (action line with the SHA-1
  ``_id`` + the data) and POSTs it with urllib3 every 1,000 documents.

The CPU counted is the client process tree's only (``wait4`` of the command);
the node runs in its own process, started here on 127.0.0.1 (``tests/servers/
opensearch.py``; assembled from Maven Central on first use). Each run writes to
a fresh index with ``dynamic: false`` mappings, one shard, no replica and no
refresh, so that the shared 2-core machine's server side stays out of the way.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import sys
import urllib.request
from pathlib import Path

import orjson

from bench.data import TYPES, ensure_input
from bench.harness import OUT, PY, Row, Scenario, canonical_json, meshline_bin, standalone

__all__ = ["main", "scenario"]

_SERVERS = contextlib.ExitStack()
atexit.register(_SERVERS.close)
BATCH = 1000


def _yaml() -> Path:
    path = OUT / "b4.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "\n".join(
            [
                "apiVersion: meshline.dev/v1alpha1",
                "kind: Integration",
                "metadata: {name: bench-b4}",
                "spec:",
                "  parameters:",
                "    - {name: input, required: true}",
                "    - {name: hosts, required: true}",
                "    - {name: index, required: true}",
                '  sources: [{name: events, type: file, config: {path: "${params.input}"}}]',
                "  targets:",
                "    - name: search",
                "      type: elasticsearch",
                '      config: {hosts: ["${params.hosts}"], index: "${params.index}", batch_size: 1000}',
                "  triggers:",
                f"    - {{name: created, filters: [{{exact: {{type: {TYPES[0]}}}}}], target: search}}",
                "",
            ]
        )
    )
    return path


def _http(url: str, method: str, body: dict | None = None) -> dict:
    req = urllib.request.Request(url, data=None if body is None else orjson.dumps(body), method=method)
    req.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return orjson.loads(r.read())
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return {}
        raise


def _fresh_index(url: str, index: str) -> None:
    _http(f"{url}/{index}", "DELETE")
    _http(
        f"{url}/{index}",
        "PUT",
        {
            "settings": {
                "number_of_shards": 1,
                "number_of_replicas": 0,
                "refresh_interval": "-1",
                "index.translog.durability": "async",
            },
            "mappings": {"dynamic": False},
        },
    )


def _documents(url: str, index: str) -> list[bytes]:
    """Every document of ``index`` as its ``_id`` and ``_source`` (sorted keys), paged by ``_id``."""
    _http(f"{url}/{index}/_refresh", "POST")
    out: list[bytes] = []
    after: list[str] | None = None
    while True:
        query: dict = {"size": 5000, "sort": [{"_id": "asc"}], "query": {"match_all": {}}}
        if after is not None:
            query["search_after"] = after
        hits = _http(f"{url}/{index}/_search", "POST", query).get("hits", {}).get("hits", [])
        if not hits:
            return out
        for h in hits:
            out.append(canonical_json({"_id": h["_id"], "_source": h["_source"]}))
        after = hits[-1]["sort"]


def loop(src: str, url: str, index: str) -> None:
    """The baseline: orjson parse → filter → orjson-built _bulk body → urllib3 POST per 1,000."""
    import urllib3

    http = urllib3.PoolManager(retries=False)
    headers = {"content-type": "application/x-ndjson"}
    prefix = b'{"index":{"_index":"%s","_id":"' % index.encode()
    wanted = TYPES[0]
    lines: list[bytes] = []

    def flush() -> None:
        r = http.request("POST", f"{url}/_bulk", body=b"".join(lines), headers=headers)
        if r.status != 200 or b'"errors":false' not in r.data[:64]:
            raise SystemExit(f"_bulk failed: {r.status} {r.data[:300]!r}")
        lines.clear()

    with open(src, "rb") as fh:
        for raw in fh:
            e = orjson.loads(raw)
            if e.get("type") != wanted:
                continue
            key = f"{e['source']}\0{e['id']}".encode()
            doc_id = hashlib.sha1(key, usedforsecurity=False).hexdigest().encode()
            lines.append(b'%s%s"}}\n%s\n' % (prefix, doc_id, orjson.dumps(e["data"])))
            if len(lines) >= BATCH:
                flush()
    if lines:
        flush()


def scenario(small: int, large: int) -> Scenario | None:
    try:
        from tests.servers.opensearch import opensearch_node
    except ImportError as e:
        print(f"B4: not available ({e})", file=sys.stderr)
        return None
    try:
        url = _SERVERS.enter_context(opensearch_node())
    except (RuntimeError, OSError) as e:
        print(f"B4: OpenSearch cannot start here: {e}", file=sys.stderr)
        return None
    spec = _yaml()

    def index_of(dst: Path, n: int) -> str:
        return f"b4-{dst.name.lower()}-{n}"

    def commands(n: int, dst: Path) -> dict[str, list[str]]:
        src = str(ensure_input(OUT / f"b1-{n}.jsonl", n))
        out = {}
        for variant in ("meshline", "python loop"):
            slug = "".join(c if c.isalnum() else "-" for c in variant)
            index = index_of(OUT / f"b4-out-{slug}", n)
            _fresh_index(url, index)
            if variant == "meshline":
                out[variant] = [
                    meshline_bin(),
                    "run",
                    str(spec),
                    "--runner",
                    "direct",
                    "--param",
                    f"input={src}",
                    "--param",
                    f"hosts={url}",
                    "--param",
                    f"index={index}",
                ]
            else:
                out[variant] = [PY, "-m", "bench.b4", "loop", src, url, index]
        return out

    def records(dst: Path) -> list[bytes]:
        return _documents(url, index_of(dst, large))

    return Scenario(
        name="B4",
        title="file → exact filter → elasticsearch _bulk (OpenSearch 2.19 node, not counted)",
        runner="direct (FnApiRunner), one worker",
        commands=commands,
        records=records,
        small=small,
        large=large,
        notes=["documents/s per core of client CPU; the node's CPU is not counted"],
    )


def main(argv: list[str] | None = None) -> list[Row]:
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["loop"]:
        loop(*argv[1:4])
        return []
    return standalone(__doc__, scenario, 20_000, 100_000, argv)


if __name__ == "__main__":
    main()
