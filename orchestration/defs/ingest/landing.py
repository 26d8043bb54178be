"""The landing zone: one folder per UTC event day, as a producer drops them.

    $RECLAKE_HOME/landing/<dataset>/date=YYYY-MM-DD/interactions.parquet   that day's events
                                                  /items.parquet          items first seen that day

A producer may drop CSV instead of parquet; the columns are the raw tables' (schema.py). A day with
no folder, or an empty file, is an empty day. `reclake replay` plays the producer for any dataset
with timestamps: cut_into_days() splits it by UTC event day, land_day() writes one day.

Rows whose timestamp cannot be read (or lies outside the valid range) have no day of their own:
they land on the dataset's first day, where dbt quarantines them with the reason, so counts in =
counts out + quarantined still holds over the whole landing zone.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from models.common.files import sha256_file
from orchestration.core.datasets import VALID_EVENT_TS, DatasetError, DatasetSpec
from orchestration.core.files import write_json_atomic, write_parquet_atomic
from orchestration.core.partitions import calendar, previous_day
from orchestration.core.paths import Lake
from orchestration.defs.ingest.loaders import load_raw_table, read_source
from orchestration.defs.ingest.schema import RAW_COLUMNS, SourceFile, raw_schema

DAILY_TABLES = ("interactions", "items")

# The UTC day of a raw timestamp, read as dbt's parse_event_ts macro reads it on DuckDB (unix
# seconds, possibly fractional, or ISO 8601 text); NULL when unreadable or outside the valid range.
_DAY_SQL = f"""
with parsed as (
    select case
        when try_cast(trim("timestamp") as double) is not null
            then case when abs(try_cast(trim("timestamp") as double)) < 253402300800
                then make_timestamp(cast(round(try_cast(trim("timestamp") as double) * 1000000) as bigint))
            end
        when trim("timestamp") like '____-%'
            then try_cast(try_cast(trim("timestamp") as timestamptz) at time zone 'UTC' as timestamp)
    end as ts
    from raw
)
select case when ts >= timestamp '{VALID_EVENT_TS[0]}' and ts < timestamp '{VALID_EVENT_TS[1]}'
            then strftime(ts, '%Y-%m-%d') end as day
from parsed
"""


@dataclass
class DatasetDays:
    """A dataset cut by event day: each table sorted by day (a stable sort: file order is kept
    within a day), with where each day's rows start and how many there are."""

    tables: dict[str, pa.Table]  # raw columns + `_day`
    days: list[str]  # every calendar day from the first to the last event day, empty ones too
    offsets: dict[str, dict[str, tuple[int, int]]]  # table -> day -> (first row, rows)

    @classmethod
    def sorted_by_day(cls, tables: dict[str, pa.Table], days: list[str]) -> DatasetDays:
        ordered, offsets = {}, {}
        for name, data in tables.items():
            data = data.take(pc.sort_indices(data, sort_keys=[("_day", "ascending")]))
            counts = pc.value_counts(data.column("_day")).to_pylist()
            spans, start = {}, 0
            for entry in sorted(counts, key=lambda c: c["values"]):
                spans[entry["values"]] = (start, entry["counts"])
                start += entry["counts"]
            ordered[name], offsets[name] = data, spans
        return cls(ordered, days, offsets)

    def history_in_one_drop(self, until: str) -> DatasetDays:
        """The days before `until` as one delivery landed on the day before it: a long history as
        one initial load (one partition, not thousands; Dagster records every partition of a
        range run). Later days are unchanged."""
        drop = previous_day(until)
        tables = {}
        for name, data in self.tables.items():
            days = data.column("_day")
            folded = pc.if_else(pc.less(days, until), pa.scalar(drop), days)
            tables[name] = data.set_column(data.schema.get_field_index("_day"), "_day", folded)
        return DatasetDays.sorted_by_day(tables, [drop, *(d for d in self.days if d >= until)])

    def rows(self, table: str, day: str) -> pa.Table:
        start, length = self.offsets[table].get(day, (0, 0))
        return self.tables[table].slice(start, length).select(RAW_COLUMNS[table])


def _days_of(interactions: pa.Table) -> pa.Array:
    with duckdb.connect() as con:
        con.register("raw", interactions.select(["timestamp"]))
        return con.sql(_DAY_SQL).to_arrow_table().column("day").combine_chunks()


def cut_into_days(spec: DatasetSpec, folder: Path) -> DatasetDays:
    """Read a dataset as a full load would and give every interaction and item its landing day."""
    interactions, _ = load_raw_table(spec, folder, "interactions")
    days = _days_of(interactions)
    valid = pc.drop_null(days)
    if len(valid) == 0:
        raise DatasetError(f"{folder}: no interaction has a readable timestamp to cut days by")
    first, last = pc.min(valid).as_py(), pc.max(valid).as_py()
    interactions = interactions.append_column("_day", pc.fill_null(days, first))
    items, _ = load_raw_table(spec, folder, "items")
    # an item lands on the day of its first readable event; one never rated, on the first day
    first_seen = (
        pa.table({"item_id": interactions.column("item_id"), "day": days})
        .filter(pc.is_valid(days))
        .group_by("item_id")
        .aggregate([("day", "min")])
    )
    seen = dict(
        zip(first_seen.column("item_id").to_pylist(), first_seen.column("day_min").to_pylist())
    )
    items = items.append_column(
        "_day",
        pa.array([seen.get(i, first) for i in items.column("item_id").to_pylist()], pa.string()),
    )
    return DatasetDays.sorted_by_day(
        {"interactions": interactions, "items": items}, calendar(first, last)
    )


def land_day(paths: Lake, dataset: str, cut: DatasetDays, day: str) -> dict:
    """Write one day's files into the landing zone (each atomically); what a producer would drop."""
    folder = paths.landing_day(dataset, day)
    counts = {}
    for table in DAILY_TABLES:
        rows = cut.rows(table, day)
        write_parquet_atomic(rows, folder / f"{table}.parquet")
        counts[table] = rows.num_rows
    return {"date": day, "events": counts["interactions"], "new_items": counts["items"]}


def landed_days(paths: Lake, dataset: str) -> list[str]:
    """The days with a folder in the landing zone, oldest first."""
    root = paths.landing(dataset)
    if not root.is_dir():
        return []
    return sorted(p.name.removeprefix("date=") for p in root.glob("date=*") if p.is_dir())


def day_files(paths: Lake, dataset: str, day: str, table: str) -> list[Path]:
    """The files of one raw table landed for a day (parquet or CSV), sorted by name."""
    folder = paths.landing_day(dataset, day)
    if not folder.is_dir():
        return []
    return sorted(
        p for ext in (".parquet", ".csv") for p in folder.glob(f"{table}*{ext}") if p.is_file()
    )


def day_sha256(paths: Lake, dataset: str, day: str, file_sha256=sha256_file) -> str:
    """One hash over a landed day's files (names and contents): what says a day changed."""
    digest = hashlib.sha256()
    for table in DAILY_TABLES:
        for path in day_files(paths, dataset, day, table):
            digest.update(f"{path.name}:{file_sha256(path)}\n".encode())
    return digest.hexdigest()


def ingested_days(paths: Lake, dataset: str) -> dict[str, str]:
    """{day: day_sha256} of the landed days the ingest stage has read, as it last read them."""
    path = paths.raw_dir(dataset) / "landed_days.json"
    return json.loads(path.read_text()) if path.exists() else {}


def record_ingested(paths: Lake, dataset: str, hashes: dict[str, str]) -> None:
    write_json_atomic(
        {**ingested_days(paths, dataset), **hashes}, paths.raw_dir(dataset) / "landed_days.json"
    )


def read_landed_day(paths: Lake, dataset: str, day: str, table: str) -> tuple[pa.Table, list[dict]]:
    """One day's landed rows of a raw table in the raw schema, with lineage relative to the landing
    zone (`date=…/interactions.parquet`, row) and the day as `_landed_date`."""
    base = paths.landing(dataset)
    identity = {c: c for c in RAW_COLUMNS[table]}
    parts, files = [], []
    for path in day_files(paths, dataset, day, table):
        fmt = "parquet" if path.suffix == ".parquet" else "csv"
        part = read_source(SourceFile(path, base, identity, fmt), table)
        parts.append(part)
        files.append(
            {
                "file": path.relative_to(base).as_posix(),
                "sha256": sha256_file(path),
                "rows": part.num_rows,
                "parse_errors": part.num_rows - part.column("_parse_error").null_count,
            }
        )
    data = pa.concat_tables(parts) if parts else raw_schema(table).empty_table()
    return data.append_column("_landed_date", pa.array([day] * data.num_rows, pa.string())), files
