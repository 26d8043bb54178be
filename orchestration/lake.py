"""Small file helpers every stage uses: atomic writes and content hashes.

A stage writes to a temporary sibling and renames it into place, so a crash never leaves a
half-written file and the previous good output stays readable until the new one is complete.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from models.files import sha256_file


def _atomic_target(path: Path) -> tuple[int, str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    return tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)


def write_parquet_atomic(table: pa.Table, path: Path) -> str:
    """Write ``table`` to ``path`` via temp file + rename; return the sha256 of the written file.

    Written without statistics timestamps or writer-varying metadata, so the same table gives
    the same bytes (and hash) on every run.
    """
    fd, tmp = _atomic_target(path)
    os.close(fd)
    try:
        pq.write_table(table, tmp, compression="zstd", write_statistics=True)
        digest = sha256_file(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return digest


def write_json_atomic(payload: dict, path: Path) -> None:
    fd, tmp = _atomic_target(path)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(payload, handle, indent=2, sort_keys=True, default=str)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_parquet_chunks_atomic(chunks, schema: pa.Schema, path: Path) -> tuple[str, int]:
    """Stream tables from ``chunks`` into one parquet file via a temp file + rename: memory holds
    one chunk at a time, and a crash midway leaves the previous file at ``path`` untouched.
    Returns the sha256 and the row count."""
    fd, tmp = _atomic_target(path)
    os.close(fd)
    rows = 0
    try:
        with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
            for chunk in chunks:
                writer.write_table(chunk.cast(schema))
                rows += chunk.num_rows
        digest = sha256_file(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return digest, rows
