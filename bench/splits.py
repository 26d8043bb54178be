"""The `splits` table the benchmarks train on: from a data home's warehouse.duckdb, or from a parquet
export of it (`--splits`), so a GPU host needs no DuckDB, dbt or Dagster to run them."""

from pathlib import Path

import pandas as pd

from models.recsys.data import SplitData


def load_splits(home: Path, splits_file: Path | None = None) -> SplitData:
    if splits_file is not None:
        return SplitData.from_splits(pd.read_parquet(splits_file))
    import duckdb

    with duckdb.connect(str(Path(home) / "warehouse.duckdb"), read_only=True) as con:
        return SplitData.from_splits(con.execute("select * from main.splits").df())
