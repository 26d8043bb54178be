"""The Spark engine gives the same tables and the same recommendations as DuckDB (`-k "spark and parity"`).

The same dbt models run on dbt-spark (RECLAKE_ENGINE=spark, `method: session`) through the real
`ingest_transform` job; batch scoring runs on a `local-cluster[2,1,1024]` Spark (a master, two workers,
separate executor JVMs and Python workers), so the model is really broadcast and the package shipped.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from support.data import ML100K_DIR, TODAY
from support.engines import assert_same_tables, table
from support.pipelines import query
from support.servers import assert_loopback_only

from orchestration.core.spark import java_missing

needs_java = pytest.mark.skipif(java_missing() is not None, reason=str(java_missing()))


def warehouse_run(home: Path, dataset: str, data_dir: Path | None, engine: str):
    """The real ingest_transform job (ingest, dbt build with its tests as checks, GE) on one engine."""
    import dagster as dg

    from orchestration.core.resources import LakeResource
    from orchestration.definitions import WAREHOUSE_JOB, build_defs

    lake = LakeResource(
        home=str(home), dataset=dataset, data_dir=str(data_dir) if data_dir else None, engine=engine
    )
    result = (
        build_defs(lake)
        .resolve_job_def(WAREHOUSE_JOB)
        .execute_in_process(
            instance=dg.DagsterInstance.ephemeral(), raise_on_error=False, partition_key=TODAY
        )
    )
    assert result.success, f"{engine} warehouse job failed"
    return result


@pytest.fixture(scope="module")
def spark_ml100k(tmp_path_factory):
    """ML-100K's warehouse built once on Spark (~2 min): the parity tests below share it. The table
    test adds Feast's files to it, the batch test the registry and a recommendations partition."""
    if java_missing() is not None:
        pytest.skip(str(java_missing()))
    home = tmp_path_factory.mktemp("spark-ml100k") / "home"
    return home, warehouse_run(home, "ml-100k", ML100K_DIR, "spark")


@pytest.mark.integration
@needs_java
def test_spark_parity_ml100k_tables(ml100k_runs, spark_ml100k, fresh_spark):
    """ML-100K through dbt-spark: the contract tables equal the DuckDB engine's, row for row, and
    Feast's Spark offline store builds the same point-in-time training set as its DuckDB one."""
    import dagster as dg
    from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import SparkSource

    from orchestration.core.feast import feature_store
    from orchestration.core.resources import LakeResource
    from orchestration.defs.features.assets import (
        feast_feature_sources,
        feast_registry,
        training_set,
    )

    runs, _ = ml100k_runs
    spark_home, result = spark_ml100k
    assert_same_tables(runs[0].home, spark_home)
    checks = result.get_asset_check_evaluations()
    assert len(checks) >= 20 and all(
        c.passed for c in checks
    )  # dbt tests (on Spark) and GE ran as checks

    # Feast on the Spark offline store (SparkSources, feature_store.spark.yaml): the same point-in-time training set
    lake = LakeResource(
        home=str(spark_home), dataset="ml-100k", data_dir=str(ML100K_DIR), engine="spark"
    )
    features = dg.materialize(
        [feast_feature_sources, feast_registry, training_set],
        resources={"lake": lake},
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert features.success
    store = feature_store(spark_home, "spark")
    assert store.config.offline_store.type == "spark"
    assert isinstance(store.get_data_source("user_stats_source"), SparkSource)
    on_spark = pd.read_parquet(spark_home / "lake" / "features" / "training_set.parquet")
    on_duckdb = pd.read_parquet(runs[0].home / "lake" / "features" / "training_set.parquet")
    pd.testing.assert_frame_equal(on_spark, on_duckdb, check_exact=False, rtol=1e-9, atol=1e-12)
    assert (spark_home / "lake" / "spark" / "warehouse" / "main.db" / "splits").is_dir()
    assert query(
        spark_home / "warehouse.duckdb",
        "select table_type from information_schema.tables where table_name = 'splits'",
    ) == [("VIEW",)]


@pytest.mark.integration
@needs_java
def test_spark_parity_synthetic_quarantine(tmp_path):
    """A synthetic dataset with 3% broken rows: both engines quarantine the same rows for the same
    reasons and keep the same clean rows and splits (ML-100K has no bad rows to compare); and the
    dbt unit tests, which pipeline runs leave out, pass on Spark too."""
    from test_dbt_contracts import assert_unit_tests_pass

    from orchestration.core.resources import LakeResource
    from orchestration.defs.ingest.synth import SynthConfig, write_synthetic_dataset
    from orchestration.defs.transform.assets import dbt_vars

    data = tmp_path / "synth"
    write_synthetic_dataset(
        SynthConfig(
            users=400, items=300, interactions=12_000, seed=7, malformed_share=0.03, item_text=True
        ),
        data,
        log=lambda _: None,
    )
    warehouse_run(tmp_path / "duck", str(data), None, "duckdb")
    warehouse_run(tmp_path / "spark", str(data), None, "spark")
    assert_same_tables(tmp_path / "duck", tmp_path / "spark")
    reasons = table(tmp_path / "spark", "quarantine_interactions")["reason"].value_counts()
    assert reasons.sum() >= 300 and {
        "missing_user_id",
        "rating_not_a_number",
        "rating_out_of_range",
        "unparseable_timestamp",
        "duplicate_event",
    } <= set(reasons.index)
    clean = query(tmp_path / "spark" / "warehouse.duckdb", "select count(*) from fct_interactions")[
        0
    ][0]
    assert clean + reasons.sum() == 12_000  # counts in = clean + quarantined
    spark = LakeResource(home=str(tmp_path / "spark"), dataset=str(data), engine="spark")
    assert_unit_tests_pass(
        tmp_path / "spark", tmp_path / "dbt-unit", dbt_vars(spark), target="spark"
    )


def stop_active_spark() -> None:
    from pyspark.sql import SparkSession

    session = (
        SparkSession.getActiveSession() or SparkSession._instantiatedSession
    )  # another thread's, too
    if session is not None:
        session.stop()


@pytest.fixture
def fresh_spark(tmp_path, monkeypatch):
    """No SparkSession of an earlier test in this process (getOrCreate would return it), none after;
    a local cluster's executors get their scratch folder here, not in the venv."""
    stop_active_spark()
    monkeypatch.setenv("SPARK_WORKER_DIR", str(tmp_path / "spark-work"))
    yield
    stop_active_spark()


@pytest.mark.integration
@needs_java
def test_spark_parity_batch_recommendations_local_cluster(ml100k_runs, spark_ml100k, fresh_spark):
    """The champion broadcast to two executor processes (local-cluster) and applied with mapInPandas
    writes the same lists as the in-process scorer did for the same date and champion."""
    import dagster as dg
    from dagster_pyspark import LazyPySparkResource

    from orchestration.core.resources import LakeResource
    from orchestration.core.spark import spark_config
    from orchestration.defs.serving.assets import batch_recommendations
    from orchestration.defs.serving.resources import ServingResource

    runs, _ = ml100k_runs
    duck_home = runs[-1].home
    date = TODAY
    spark_home, _ = spark_ml100k
    shutil.copytree(
        duck_home / "mlflow", spark_home / "mlflow"
    )  # the same registry, so the same champion

    master = "local-cluster[2,1,1024]"
    config = {**spark_config(master), "spark.executor.memory": "1g", "spark.driver.memory": "1g"}
    lake = LakeResource(
        home=str(spark_home), dataset="ml-100k", data_dir=str(ML100K_DIR), engine="spark"
    )
    result = dg.materialize(
        [batch_recommendations],
        partition_key=date,
        instance=dg.DagsterInstance.ephemeral(),
        resources={
            "lake": lake,
            "serving": ServingResource(chunk_users=128),
            "spark": LazyPySparkResource(spark_config=config),
        },
    )
    assert result.success

    from pyspark.sql import SparkSession

    context = SparkSession.getActiveSession().sparkContext
    assert context.master == master
    executors = context._jsc.sc().getExecutorMemoryStatus().size() - 1  # minus the driver
    assert executors == 2

    in_process = pd.read_parquet(
        duck_home / "lake" / "recommendations" / f"date={date}" / "recommendations.parquet"
    )
    on_spark = pd.read_parquet(
        spark_home / "lake" / "recommendations" / f"date={date}" / "recommendations.parquet"
    )
    [meta] = [e.materialization.metadata for e in result.get_asset_materialization_events()]
    assert (
        meta["engine"].value == "spark"
        and meta["users_scored"].value == in_process["user_id"].nunique()
    )
    key = ["user_id", "rank"]
    in_process, on_spark = (
        f.sort_values(key).reset_index(drop=True) for f in (in_process, on_spark)
    )
    assert len(on_spark) == len(in_process) == 943 * 20
    pd.testing.assert_frame_equal(
        on_spark.drop(columns="score"), in_process.drop(columns="score"), check_exact=True
    )
    np.testing.assert_allclose(on_spark["score"], in_process["score"], rtol=1e-5, atol=1e-6)
    assert not (
        spark_home / "lake" / "recommendations" / ".spark" / f"date={date}"
    ).exists()  # scratch removed


@needs_java
def test_spark_listens_on_loopback_only(fresh_spark):
    """The session reclake configures (the same spark_config dbt-spark and batch scoring use): its JVM's
    driver RPC, block manager and py4j gateway ports are all on 127.0.0.1."""
    from pyspark.sql import SparkSession

    from orchestration.core.spark import spark_config

    builder = SparkSession.builder
    for key, value in spark_config("local[1]").items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    assert session.range(3).count() == 3  # executors started, block manager up
    jvm = session.sparkContext._gateway.proc.pid  # spark-submit, and the driver JVM it runs
    assert len(assert_loopback_only(jvm)) >= 2


def test_unknown_engine_is_a_clear_error():
    from orchestration.core.settings import SettingError, resource_fields

    assert resource_fields("lake", {"RECLAKE_ENGINE": "Spark"})["engine"] == "spark"
    with pytest.raises(
        SettingError, match="RECLAKE_ENGINE='postgres': expected one of duckdb, spark"
    ):
        resource_fields("lake", {"RECLAKE_ENGINE": "postgres"})


def test_spark_tables_replace_duckdb_tables_as_views(tmp_path):
    """Switching a home from duckdb to spark: the table of the same name becomes a view over Spark's
    parquet folder (a home path with a quote in it included); a name Spark did not write is left alone."""
    import duckdb
    import pyarrow as pa
    import pyarrow.parquet as pq

    from orchestration.core.paths import Lake
    from orchestration.core.spark import publish_spark_tables

    home = tmp_path / "it's home"
    warehouse = home / "warehouse.duckdb"
    home.mkdir()
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create table main.splits as select 'old' as split")
    folder = Lake(home).spark_tables / "splits"
    folder.mkdir(parents=True)
    for part in range(2):
        pq.write_table(pa.table({"split": ["train", "test"]}), folder / f"part-0000{part}.parquet")
    assert publish_spark_tables(Lake(home), ["splits", "stg_interactions"]) == ["splits"]
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute(
            "select table_type from information_schema.tables where table_name = 'splits'"
        ).fetchall() == [("VIEW",)]
        assert sorted(con.execute("select split from main.splits").fetchall()) == [
            ("test",),
            ("test",),
            ("train",),
            ("train",),
        ]
