"""The raw tables' columns and Arrow schema, and what one source file is.

Every raw column is a string as the file has it; four lineage columns follow: the source file
(relative name), its sha256, the 1-based line (CSV/JSON) or row (parquet) where the record starts,
and a parse error for records that could not be split into fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

RAW_COLUMNS: dict[str, list[str]] = {
    "interactions": ["user_id", "item_id", "rating", "timestamp", "review_summary", "review_text"],
    "items": ["item_id", "title", "year", "genres", "description"],
    "users": ["user_id", "age", "gender", "occupation", "zip_code"],
    "item_tags": ["user_id", "item_id", "tag", "timestamp"],
}
REQUIRED_COLUMNS: dict[str, list[str]] = {
    "interactions": ["user_id", "item_id", "timestamp"],
    "items": ["item_id"],
    "users": ["user_id"],
    "item_tags": ["user_id", "item_id", "tag"],
}
# Fields that must be one value: an object or list there is a malformed record, not an id.
SCALAR_COLUMNS: dict[str, list[str]] = {
    **REQUIRED_COLUMNS,
    "interactions": [*REQUIRED_COLUMNS["interactions"], "rating"],
}


@dataclass(frozen=True)
class SourceFile:
    path: Path
    base: Path  # lineage records the path relative to this folder, so runs on copies agree
    columns: dict[str, str]  # source column name -> raw column name
    fmt: str  # "csv", "tsv-recbole", "jsonl", "parquet"


def raw_schema(table: str) -> pa.Schema:
    fields = [pa.field(c, pa.string()) for c in RAW_COLUMNS[table]]
    fields += [
        pa.field("_source_file", pa.string()),
        pa.field("_source_sha256", pa.string()),
        pa.field("_source_row", pa.int64()),
        pa.field("_parse_error", pa.string()),
    ]
    return pa.schema(fields)
