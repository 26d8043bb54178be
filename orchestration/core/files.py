"""Atomic writes every stage uses.

A stage writes to a temporary sibling and renames it into place, so a crash never leaves a
half-written file and the previous good output stays readable until the new one is complete.
The file is fsynced before the rename and its folder after: a power cut cannot leave a renamed
but empty file, nor lose the rename itself.
"""

from __future__ import annotations

import glob
import json
import os
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from models.common.failpoints import failpoint
from models.common.files import process_alive, sha256_file


def _temp_prefix(path: Path) -> str:
    # host and pid of the writer: a data home may be shared by machines, whose pids mean nothing here
    return f".{path.name}.{socket.gethostname()}."


def remove_orphan_temps(path: Path) -> list[Path]:
    """Delete temp siblings of ``path`` left by writers on this host that were killed (their pid is
    gone). Temp names start with a dot and end in .tmp, so no reader globbing *.parquet sees them."""
    removed, prefix = [], _temp_prefix(path)
    for tmp in path.parent.glob(f"{glob.escape(prefix)}*.tmp"):
        pid = tmp.name[len(prefix) :].split(".", 1)[0]
        if pid.isdigit() and not process_alive(int(pid)):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


@contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """A temp sibling of ``path`` to write; renamed onto ``path`` when the block ends, deleted if
    it raises, so ``path`` only ever holds a complete file. The temp name carries the writer's host and pid,
    so the next write of ``path`` can tell a dead writer's leftovers from a live one's work."""
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_orphan_temps(path)
    fd, name = tempfile.mkstemp(
        prefix=f"{_temp_prefix(path)}{os.getpid()}.", suffix=".tmp", dir=path.parent
    )
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        _fsync(tmp, os.O_RDONLY)  # the bytes are on disk before the name points at them
        os.replace(tmp, path)
        _fsync(path.parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))  # and so is the new name
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _fsync(path: Path, flags: int) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_parquet_atomic(table: pa.Table, path: Path) -> str:
    """Write ``table`` to ``path`` via temp file + rename; return the sha256 of the written file.

    Written without statistics timestamps or writer-varying metadata, so the same table gives
    the same bytes (and hash) on every run.
    """
    with atomic_file(path) as tmp:
        pq.write_table(table, tmp, compression="zstd", write_statistics=True)
        digest = sha256_file(tmp)
    return digest


def write_json_atomic(payload: dict, path: Path) -> None:
    with atomic_file(path) as tmp, open(tmp, "w") as handle:
        json.dump(payload, handle, indent=2, sort_keys=True, default=str)


def write_parquet_chunks_atomic(chunks, schema: pa.Schema, path: Path) -> tuple[str, int]:
    """Stream tables from ``chunks`` into one parquet file via a temp file + rename: memory holds
    one chunk at a time, and a crash midway leaves the previous file at ``path`` untouched.
    Returns the sha256 and the row count."""
    rows = 0
    with atomic_file(path) as tmp:
        with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
            for chunk in chunks:
                writer.write_table(chunk.cast(schema))
                rows += chunk.num_rows
                failpoint("lake.mid_stream_write")
        digest = sha256_file(tmp)
    return digest, rows
