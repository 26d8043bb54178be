"""Two warehouses compared table by table: the engines' parity tests (test_spark.py) and the daily
loop's (test_daily_loop.py)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

EXACT_TABLES = ["fct_interactions", "quarantine_interactions", "splits", "dim_items", "dim_users"]
FEATURE_TABLES = ["feat_user_stats", "feat_item_stats"]  # sums of squares: equal to float rounding
SORT_KEYS = {
    "fct_interactions": ["source_file", "source_row"],
    "quarantine_interactions": ["source_file", "source_row"],
    "splits": ["source_file", "source_row"],
    "dim_items": ["item_id"],
    "dim_users": ["user_id"],
    "feat_user_stats": ["user_id", "event_timestamp"],
    "feat_item_stats": ["item_id", "event_timestamp"],
}


def table(home: Path, name: str) -> pd.DataFrame:
    import duckdb

    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        frame = con.execute(f'select * from main."{name}"').df()
    return frame.sort_values(SORT_KEYS[name], kind="stable").reset_index(drop=True)


def assert_same_tables(duck_home: Path, spark_home: Path) -> None:
    for name in EXACT_TABLES:
        duck, spark = table(duck_home, name), table(spark_home, name)
        assert list(spark.columns) == list(duck.columns), name
        assert [str(t) for t in spark.dtypes] == [str(t) for t in duck.dtypes], name
        pd.testing.assert_frame_equal(spark, duck, check_exact=True, obj=name)
    for name in FEATURE_TABLES:
        pd.testing.assert_frame_equal(
            table(spark_home, name),
            table(duck_home, name),
            check_exact=False,
            rtol=1e-9,
            atol=1e-12,
            obj=name,
        )
