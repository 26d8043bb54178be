"""How batch_recommendations scores a night (the asset is assets.py): the lists served on day D come
from each user's history before D (data up to the night before) and hold only items seen before D,
the champion's top-K in process with torch or on Spark, written as one partition."""

import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from models import registry
from models.recsys.data import sequences_by_user
from orchestration.core.feast import bind_ranking_stats
from orchestration.core.files import (
    write_parquet_chunks_atomic,
)
from orchestration.core.resources import LakeResource
from orchestration.core.warehouse import query
from orchestration.defs.serving.resources import ServingResource

RECOMMENDATION_SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("item_id", pa.string()),
        ("rank", pa.int32()),
        ("score", pa.float32()),
        ("model_name", pa.string()),
        ("model_version", pa.string()),
    ]
)


def champion_or_failure(client):
    """The champion to score with, or a Dagster Failure saying how to get one."""
    try:
        return registry.load_champion(client)
    except registry.NoChampionError as err:
        raise dg.Failure(str(err)) from None


def histories_until(
    lake: LakeResource, end: datetime, item_index: pd.Series
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Every user's interactions before `end`, in time order (ties by source file and row), as the
    model's item indices; items the model never saw are dropped."""
    frame = query(
        lake.warehouse_path,
        "select user_id, item_id from main.fct_interactions where event_ts < ? "
        "order by user_id, event_ts, source_file, source_row",
        [end.replace(tzinfo=None)],
    )
    users, codes = np.unique(frame["user_id"].to_numpy(dtype=object), return_inverse=True)
    items = item_index.reindex(frame["item_id"]).to_numpy()
    known = ~np.isnan(items)
    return users, sequences_by_user(codes[known], items[known].astype(np.int64), len(users))


def seen_by(
    lake: LakeResource, end: datetime, items: np.ndarray, popularity: np.ndarray | None
) -> np.ndarray | None:
    """The candidates of a night: the model's items that someone interacted with before it, or that
    landed in the catalog before it (a new film, with no interaction yet: the model ranks it by what
    its text lent it). A model trained later than the night it serves must not recommend a film that
    did not exist yet. None: every item (no history and no landing days, as in a snapshot)."""
    landed = query(
        lake.warehouse_path,
        "select item_id from main.dim_items where first_landed_on < ?",
        [end.date()],
    )["item_id"].to_numpy(dtype=str)
    if popularity is None and not len(landed):
        return None
    seen = np.isin(np.asarray(items, dtype=str), landed)
    return seen if popularity is None else seen | (popularity > 0)


def lists_in_process(lake: LakeResource, serving: ServingResource, champion, end: datetime):
    """(users scored, each history item's count, DataFrames of lists chunk by chunk) on this machine.
    A model that reads Feast stats (two_stage) looks them up as of the end of the day, chunk by chunk."""
    recommender = champion.recommender
    bind_ranking_stats(recommender.model, lake.home_path, lake.engine, end)
    users, histories = histories_until(lake, end, recommender.item_index)
    popularity = (
        np.bincount(np.concatenate(histories), minlength=len(recommender.items))
        if histories
        else None
    )
    frames = (
        frame.assign(model_name=champion.model_name, model_version=champion.version)
        for frame in recommender.iter_recommendations(
            users,
            histories,
            serving.top_k,
            serving.chunk_users,
            seen_by(lake, end, recommender.items, popularity),
        )
    )
    return len(users), popularity, frames


def lists_on_spark(
    spark, lake: LakeResource, serving: ServingResource, champion, end: datetime, date: str
):
    """The same on Spark: executors score the users (mapInPandas) and write parquet parts to a
    scratch folder, which is streamed into the one contract file in user order, then removed."""
    from pyspark.sql import functions as F

    from models.recsys.spark_scoring import score_with_spark, ship_models_package, user_histories

    source = lake.paths.spark_tables / "fct_interactions"
    if not source.is_dir():
        raise dg.Failure(
            f"{source} not found: with RECLAKE_ENGINE=spark, materialize the `transform` group "
            "on Spark first (it writes fct_interactions there)"
        )
    recommender = champion.recommender
    if hasattr(recommender.model, "stats"):
        raise dg.Failure(
            f"the champion is {champion.model_name} v{champion.version}, which looks up Feast stats per "
            "candidate: it is served in process (RECLAKE_ENGINE=duckdb), not on Spark executors"
        )
    ship_models_package(spark)
    histories = user_histories(
        spark, spark.read.parquet(str(source)), end, recommender.items
    ).cache()
    n_users = histories.count()
    counted = histories.select(F.explode("history").alias("i")).groupBy("i").count().toPandas()
    popularity = np.zeros(len(recommender.items), np.int64)
    popularity[counted["i"].to_numpy(np.int64)] = counted["count"].to_numpy()
    scratch = lake.paths.recommendations_scratch(date)
    lists = score_with_spark(
        spark,
        recommender,
        histories,
        k=serving.top_k,
        chunk_users=serving.chunk_users,
        model_name=champion.model_name,
        model_version=champion.version,
        candidates=seen_by(lake, end, recommender.items, popularity),
    )
    lists.write.mode("overwrite").parquet(str(scratch))
    histories.unpersist()

    def frames():
        try:
            for part in sorted(
                scratch.glob("part-*.parquet")
            ):  # range-partitioned: parts in user order
                for batch in pq.ParquetFile(part).iter_batches():
                    yield batch.to_pandas()
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    return n_users, popularity, frames()


def score_partition(
    context,
    lake: LakeResource,
    serving: ServingResource,
    champion,
    date: str,
    spark=None,
    path: Path | None = None,
) -> dict:
    """Write one date's recommendations (streamed chunk by chunk, renamed into place at the end) to
    the served partition, or to `path` (a shadow list)."""
    end = datetime.fromisoformat(date).replace(tzinfo=UTC)  # served on D: data before D only
    recommender = champion.recommender
    item_index = recommender.item_index
    engine = "spark" if spark is not None else "in-process torch"
    context.log.info(
        f"{date}: scoring with {champion.model_name} v{champion.version} (run {champion.run_id}) "
        f"on {engine}, K={serving.top_k}, chunks of {serving.chunk_users} users"
    )
    started = time.perf_counter()
    if spark is not None:
        n_users, popularity, frames = lists_on_spark(spark, lake, serving, champion, end, date)
    else:
        n_users, popularity, frames = lists_in_process(lake, serving, champion, end)
    counts = np.zeros(len(recommender.items), np.int64)

    def chunks():
        users_done = 0
        for frame in frames:
            np.add.at(counts, item_index.reindex(frame["item_id"]).to_numpy(np.int64), 1)
            users_done += frame["user_id"].nunique()
            context.log.info(f"{date}: {users_done}/{n_users} users' lists written")
            yield pa.Table.from_pandas(frame, preserve_index=False)

    path = path or lake.paths.recommendations(date)
    digest, rows = write_parquet_chunks_atomic(chunks(), RECOMMENDATION_SCHEMA, path)
    seconds = time.perf_counter() - started
    popularity = counts if popularity is None else popularity
    percentile = (
        pd.Series(popularity).rank(pct=True).to_numpy()
    )  # 1.0 = the most interacted-with item
    return {
        "date": date,
        "rows": rows,
        "users_scored": n_users,
        "seconds": round(seconds, 2),
        "users_per_second": round(n_users / seconds, 1) if seconds else 0.0,
        "coverage": round(float((counts > 0).mean()), 4),
        "popularity_bias": round(
            float(np.average(percentile, weights=counts)) if counts.any() else 0.0, 4
        ),
        "history_cutoff": end.isoformat(),
        "path": str(path),
        "sha256": digest,
    }
