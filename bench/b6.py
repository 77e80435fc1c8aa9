"""B6 object-store target: file → azure.datalake (Parquet, azurite) beside file → Parquet files.

Run alone: ``.venv/bin/python -m bench.b6 [--small N --large N --repeat R]``.
The CPU counted is the Meshline process's; azurite runs in its own process
(started here, on 127.0.0.1) and its CPU is not in the numbers. Needs npm or a
cached azurite (``tests/servers/azurite.py`` installs it).
"""

from __future__ import annotations

import atexit
import contextlib
import sys
from pathlib import Path

from bench.data import ensure_input
from bench.harness import OUT, Row, Scenario, meshline_bin, parquet_records, standalone

__all__ = ["main", "scenario"]

_SERVERS = contextlib.ExitStack()
atexit.register(_SERVERS.close)


def _yaml(target: str) -> Path:
    path = OUT / f"b6-{target}.yaml"
    if target == "datalake":
        config = (
            '{connection_string: "${params.cs}", container: "${params.container}", '
            'prefix: "{yyyy}/{mm}/{dd}", format: parquet}'
        )
        kind = "azure.datalake"
    else:
        config = '{path: "${params.output}/{yyyy}/{mm}/{dd}", format: parquet}'
        kind = "file"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "\n".join(
            [
                "apiVersion: meshline.dev/v1alpha1",
                "kind: Integration",
                f"metadata: {{name: bench-b6-{target}}}",
                "spec:",
                "  parameters:",
                "    - {name: input, required: true}",
                "    - {name: output, default: unused}",
                "    - {name: cs, default: unused, secret: true}",
                "    - {name: container, default: unused}",
                '  sources: [{name: events, type: file, config: {path: "${params.input}"}}]',
                f"  targets: [{{name: out, type: {kind}, config: {config}}}]",
                "  triggers: [{name: all, target: out}]",
                "",
            ]
        )
    )
    return path


def scenario(small: int, large: int) -> Scenario | None:
    try:
        from azure.storage.blob import BlobServiceClient

        from tests.servers.azurite import azurite, connection_string
    except ImportError as e:
        print(f"B6: not available ({e})", file=sys.stderr)
        return None
    try:
        url = _SERVERS.enter_context(azurite())
    except RuntimeError as e:
        print(f"B6: azurite cannot start here: {e}", file=sys.stderr)
        return None
    cs = connection_string(url)
    service = BlobServiceClient.from_connection_string(cs)
    containers: dict[int, str] = {}

    def container(n: int) -> str:
        if n not in containers:  # one container per input size: a rerun overwrites the same objects
            containers[n] = f"b6-lake-{n}"
            service.create_container(containers[n])
        return containers[n]

    def commands(n: int, dst: Path) -> dict[str, list[str]]:
        src = str(ensure_input(OUT / f"b1-{n}.jsonl", n))
        return {
            "datalake parquet": [
                meshline_bin(),
                "run",
                str(_yaml("datalake")),
                "--runner",
                "direct",
                "--param",
                f"input={src}",
                "--param",
                f"cs={cs}",
                "--param",
                f"container={container(n)}",
            ],
            "file parquet": [
                meshline_bin(),
                "run",
                str(_yaml("file")),
                "--runner",
                "direct",
                "--param",
                f"input={src}",
                "--param",
                f"output={dst}",
            ],
        }

    def records(dst: Path) -> list[bytes]:
        out: list[bytes] = []
        if "datalake" in dst.name:
            c = service.get_container_client(containers[large])
            for b in c.list_blobs():
                if b.name.endswith(".parquet") and "/.meshline" not in b.name:
                    out += parquet_records(c.download_blob(b.name).readall())
            return out
        for f in sorted(dst.rglob("*.parquet")):
            if ".meshline" not in str(f.relative_to(dst)):
                out += parquet_records(f.read_bytes())
        return out

    return Scenario(
        name="B6",
        title="file → azure.datalake parquet (azurite) vs file → parquet",
        runner="direct (FnApiRunner), one worker; azurite in its own process (CPU not counted)",
        commands=commands,
        records=records,
        small=small,
        large=large,
    )


def main(argv: list[str] | None = None) -> list[Row]:
    if argv is None:
        argv = sys.argv[1:]
    return standalone(__doc__, scenario, 20_000, 200_000, argv)


if __name__ == "__main__":
    main()
