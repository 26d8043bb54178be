"""Read each dataset format into raw tables of strings, one row per source record.

Raw tables keep values exactly as the file has them (all VARCHAR: casting and validation are
dbt's job, so a bad value becomes a quarantined row, not a crash) plus lineage columns: the
source file (relative name), its sha256, the 1-based line (CSV/JSON) or row (parquet) where the
record starts, and a parse error for records that could not be split into fields.

schema.py names the columns, sources.py finds a dataset's files, readers.py reads each format.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from models.common.files import sha256_file
from orchestration.core.datasets import DatasetError, DatasetSpec
from orchestration.defs.ingest.readers import READERS
from orchestration.defs.ingest.schema import RAW_COLUMNS, SourceFile, raw_schema
from orchestration.defs.ingest.sources import sources_for


def read_source(source: SourceFile, table: str) -> pa.Table:
    """Read one file into the raw schema of ``table``."""
    if not source.path.exists():
        raise DatasetError(f"{source.path}: file not found")
    columns: dict[str, list] = {name: [] for name in raw_schema(table).names}
    for row_number, values, error in READERS[source.fmt](source, table):
        for name in RAW_COLUMNS[table]:
            columns[name].append(values.get(name))
        columns["_source_row"].append(row_number)
        columns["_parse_error"].append(error)
    n_rows = len(columns["_source_row"])
    columns["_source_file"] = [source.path.relative_to(source.base).as_posix()] * n_rows
    columns["_source_sha256"] = [sha256_file(source.path)] * n_rows
    return pa.table(columns, schema=raw_schema(table))


def load_raw_table(spec: DatasetSpec, folder: Path, table: str) -> tuple[pa.Table, list[dict]]:
    """All source files of one raw table, concatenated in file order, with a per-file summary."""
    tables, files = [], []
    for source in sources_for(spec, folder, table):
        part = read_source(source, table)
        if table == "interactions" and part.num_rows == 0:
            raise DatasetError(f"{source.path}: no data rows (a header alone is not a dataset)")
        tables.append(part)
        files.append(
            {
                "file": source.path.relative_to(source.base).as_posix(),
                "sha256": part.column("_source_sha256")[0].as_py()
                if part.num_rows
                else sha256_file(source.path),
                "rows": part.num_rows,
                "parse_errors": part.num_rows - part.column("_parse_error").null_count,
            }
        )
    if not tables:
        return raw_schema(table).empty_table(), files
    return pa.concat_tables(tables), files
