"""The Spark engine (RECLAKE_ENGINE=spark): its session settings, where its tables live, and how they
are exposed in warehouse.duckdb so that every reader works the same with either engine.

dbt-spark (profile target `spark`, transforms/profiles.yml) writes each mart as a parquet folder under
`$RECLAKE_HOME/lake/spark/warehouse/main.db/<table>/`. After a build, reclake replaces the table of the
same name in warehouse.duckdb by a view over that folder: the contract tables (fct_interactions,
splits, ...) keep their names and columns, and Feast, training and serving read them unchanged.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from orchestration.core.paths import Lake
from orchestration.core.settings import setting
from orchestration.core.sql import quote_ident, quote_literal
from orchestration.core.warehouse import connect

ENGINES = ("duckdb", "spark")


def java_missing() -> str | None:
    """Why Spark cannot start here (no Java runtime), or None when it can."""
    java_home = os.environ.get("JAVA_HOME")  # Java's own variable, as every JVM launcher reads it
    if (java_home and (Path(java_home) / "bin" / "java").exists()) or shutil.which("java"):
        return None
    return (
        "RECLAKE_ENGINE=spark needs a Java 17+ runtime (java on PATH or JAVA_HOME), e.g. "
        "`apt-get install openjdk-17-jre-headless`"
    )


def engine_problem(engine: str) -> str | None:
    """Why a step cannot run on `engine` here (unknown name, Spark without Java), or None."""
    if engine not in ENGINES:
        return f"engine {engine!r} (RECLAKE_ENGINE): expected one of {', '.join(ENGINES)}"
    return java_missing() if engine == "spark" else None


def spark_config(master: str | None = None) -> dict[str, str]:
    """Session settings for Spark jobs run by reclake itself (batch scoring). The values that decide
    results are the dbt profile's: UTC, timestamps without time zone, microsecond parquet timestamps."""
    return {
        "spark.master": master or setting("RECLAKE_SPARK_MASTER"),
        "spark.app.name": "reclake",
        "spark.driver.memory": setting("RECLAKE_SPARK_DRIVER_MEMORY"),
        "spark.executor.memory": setting("RECLAKE_SPARK_EXECUTOR_MEMORY"),
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.timestampType": "TIMESTAMP_NTZ",
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        "spark.sql.shuffle.partitions": str(setting("RECLAKE_SPARK_SHUFFLE_PARTITIONS")),
        "spark.ui.enabled": str(setting("RECLAKE_SPARK_UI")).lower(),
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
    }


def publish_spark_tables(lake: Lake, names: list[str]) -> list[str]:
    """Point warehouse.duckdb's `main.<name>` at Spark's parquet folder for each name that Spark wrote
    as a table (its views, stg_/int_, stay in Spark). Returns the names published."""
    published = []
    lake.warehouse.parent.mkdir(parents=True, exist_ok=True)
    with connect(lake.warehouse, read_only=False) as con:
        for name in names:
            folder = lake.spark_tables / name
            if not folder.is_dir():
                continue
            kind = con.execute(
                "select table_type from information_schema.tables where table_schema = 'main' "
                "and table_name = ?",
                [name],
            ).fetchall()
            if kind and kind[0][0] == "BASE TABLE":  # built earlier by the duckdb engine
                con.execute(f"drop table main.{quote_ident(name)}")
            con.execute(
                f"create or replace view main.{quote_ident(name)} as "
                f"select * from read_parquet({quote_literal(str(folder / '*.parquet'))})"
            )
            published.append(name)
    return published
