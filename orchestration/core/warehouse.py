"""Reading the DuckDB warehouse: connections, queries, content fingerprints and the split.

Readers open it read-only (DuckDB allows one writer process per file; dbt is that writer while it
runs), so every stage reads through here:

    frame = query(lake.warehouse, "select * from main.dim_items")
    data, version = load_splits(lake.warehouse)      # SplitData + the content hash of `splits`
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from models.recsys.data import SplitData
from orchestration.core.sql import quote_ident

SPLIT_COLUMNS = "user_id, item_id, event_ts, split, source_file, source_row"


@contextmanager
def connect(warehouse: Path, read_only: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
    with duckdb.connect(str(warehouse), read_only=read_only) as con:
        yield con


def query(warehouse: Path, sql: str, params: list | None = None) -> pd.DataFrame:
    """One read-only query as a DataFrame."""
    with connect(warehouse) as con:
        return con.execute(sql, params or []).df()


def table_fingerprint(con: duckdb.DuckDBPyConnection, relation: str) -> tuple[int, str]:
    """Row count and an order-independent content hash: md5 of the count and two sums of 64-bit
    row hashes (one pass, no sort: a day's run on a 10M-row table costs a fraction of a second)."""
    rows, digest = con.execute(
        "select count(*), md5(count(*)::varchar || ':' || coalesce(sum(hash(t)::hugeint), 0)::varchar"
        " || ':' || coalesce(sum(hash(t, 'reclake')::hugeint), 0)::varchar) "
        f"from main.{quote_ident(relation)} as t"
    ).fetchone()
    return rows, digest


def view_sql(con: duckdb.DuckDBPyConnection, relation: str) -> str | None:
    """The SQL of a view in `main`; None when `relation` is not a view."""
    row = con.execute(
        "select sql from duckdb_views() where schema_name = 'main' and view_name = ?", [relation]
    ).fetchone()
    return None if row is None else row[0]


def load_splits(warehouse: Path) -> tuple[SplitData, str]:
    """The split as index arrays, and its data version (the content hash of `splits`). The items are
    those of `dim_items` where the warehouse has it: a film landed with no interaction yet is among
    them, so a model gets a row for it (LLM-SASRec from its text) and a night's lists may hold it."""
    with connect(warehouse) as con:
        frame = con.execute(f"select {SPLIT_COLUMNS} from main.splits").df()
        _, digest = table_fingerprint(con, "splits")
        has_catalog = con.execute(  # a table, or a view over Spark's parquet
            "select count(*) from information_schema.tables "
            "where table_schema = 'main' and table_name = 'dim_items'"
        ).fetchone()[0]
    catalog = catalog_items(warehouse) if has_catalog else None
    return SplitData.from_splits(frame, catalog=catalog), digest


def user_history(warehouse: Path, user_id: str) -> list[str]:
    """The items of one user's events in time order (file order breaks ties), as the champion
    reads a history."""
    return query(
        warehouse,
        "select item_id from main.fct_interactions where user_id = ? "
        "order by event_ts, source_file, source_row",
        [user_id],
    )["item_id"].tolist()


def catalog_items(warehouse: Path) -> np.ndarray:
    """Every film of dim_items: the candidates, with or without interactions."""
    return query(warehouse, "select item_id from main.dim_items")["item_id"].to_numpy(dtype=str)


def splits_version(warehouse: Path) -> str:
    """The data version of `splits` alone, for steps that compare versions but read no rows."""
    with connect(warehouse) as con:
        return table_fingerprint(con, "splits")[1]


def held_out_moments(warehouse: Path, data: SplitData, stage: str) -> pd.Series:
    """When each user's held-out `stage` event happened (naive UTC), indexed by the user's index in `data`."""
    frame = query(warehouse, "select user_id, event_ts from main.splits where split = ?", [stage])
    index = pd.Series(range(len(data.users)), index=data.users)
    return pd.Series(frame["event_ts"].to_numpy(), index=index.reindex(frame["user_id"]).to_numpy())
