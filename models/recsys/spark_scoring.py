"""Batch scoring on Spark: the champion broadcast to the executors and applied with `mapInPandas`.

    histories = user_histories(spark, interactions, end, recommender.items)   # user_id, history
    lists = score_with_spark(spark, recommender, histories, k=20, chunk_users=1024,
                             model_name="sasrec", model_version="3")

Users are numbered in user_id order and cut into chunks of `chunk_users`, exactly as the in-process
scorer (`SavedRecommender.iter_recommendations`) cuts them, so both engines score the same batches
and return the same lists. Each executor loads the broadcast model once per Python worker.
"""

from __future__ import annotations

import hashlib
import tempfile
import zipfile
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

OUTPUT_SCHEMA = (
    "user_id string, item_id string, rank int, score float, model_name string, model_version string"
)
_LOADED: dict[str, object] = {}  # payload sha256 -> SavedRecommender, per executor Python worker


def ship_models_package(spark) -> None:
    """Send this `models` package to the executors (a cluster's workers need not have the repo)."""
    package = Path(__file__).resolve().parents[1]
    archive = Path(tempfile.mkdtemp(prefix="reclake-models-")) / "models.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(package.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                zf.write(path, Path("models") / path.relative_to(package))
    spark.sparkContext.addPyFile(str(archive))


def user_histories(spark, interactions, end: datetime, items: np.ndarray):
    """One row per user with an interaction before `end`: user_id and the history as the model's
    item indices in time order (ties by source file and row). Items the model never saw
    are left out of the history, but their user still gets a (possibly empty-history) row."""
    from pyspark.sql import functions as F

    vocabulary = spark.createDataFrame(
        pd.DataFrame(
            {"item_id": items.astype(str), "item_index": np.arange(len(items), dtype=np.int64)}
        )
    )
    events = interactions.where(F.col("event_ts") < F.lit(end.replace(tzinfo=None))).join(
        F.broadcast(vocabulary), "item_id", "left"
    )
    per_user = events.groupBy("user_id").agg(
        F.sort_array(
            F.collect_list(F.struct("event_ts", "source_file", "source_row", "item_index"))
        ).alias("events")
    )
    return per_user.select(
        "user_id",
        F.expr("transform(filter(events, e -> e.item_index is not null), e -> e.item_index)").alias(
            "history"
        ),
    )


def number_users(histories, chunk_users: int):
    """Add `chunk` = position in user_id order // chunk_users (distributed: zipWithIndex on sorted rows)."""
    ordered = histories.orderBy("user_id")
    numbered = ordered.rdd.zipWithIndex().map(lambda pair: (*pair[0], pair[1] // chunk_users))
    return numbered.toDF([*ordered.columns, "chunk"])


def _score_partition(
    payload, payload_key: str, k: int, model_name: str, model_version: str, candidates=None
):
    """The function each executor runs over its rows (sorted by chunk, then user_id)."""

    def score(batches):
        import torch
        from pyspark import TaskContext

        from models.recsys.serving import SavedRecommender

        torch.set_num_threads(max(TaskContext.get().cpus(), 1))
        if payload_key not in _LOADED:
            _LOADED[payload_key] = SavedRecommender.from_payload(payload.value)
        recommender = _LOADED[payload_key]

        def lists(rows: pd.DataFrame):
            users = rows["user_id"].to_numpy(dtype=object)
            histories = [np.asarray(h, dtype=np.int64) for h in rows["history"]]
            for frame in recommender.iter_recommendations(
                users, histories, k, batch_size=len(rows), candidates=candidates
            ):
                yield frame.assign(
                    rank=frame["rank"].astype(np.int32),
                    score=frame["score"].astype(np.float32),
                    model_name=model_name,
                    model_version=model_version,
                )

        pending, pending_chunk = [], None
        for batch in batches:  # Arrow batches may cut a chunk in two: gather it whole first
            for chunk, rows in batch.groupby("chunk", sort=False):
                if pending and chunk != pending_chunk:
                    yield from lists(pd.concat(pending, ignore_index=True))
                    pending = []
                pending.append(rows)
                pending_chunk = chunk
        if pending:
            yield from lists(pd.concat(pending, ignore_index=True))

    return score


def score_with_spark(
    spark,
    recommender,
    histories,
    *,
    k: int,
    chunk_users: int,
    model_name: str,
    model_version: str,
    partitions: int | None = None,
    candidates: np.ndarray | None = None,
):
    """Top-k lists for every row of `histories` (user_id, history), as a Spark DataFrame in the
    contract's columns. The model travels once per executor as a broadcast variable."""
    model_bytes = recommender.scoring_payload()
    payload = spark.sparkContext.broadcast(model_bytes)
    numbered = number_users(histories, chunk_users)
    partitions = partitions or max(spark.sparkContext.defaultParallelism, 1)
    ranged = numbered.repartitionByRange(partitions, "chunk").sortWithinPartitions(
        "chunk", "user_id"
    )
    key = hashlib.sha256(model_bytes).hexdigest()
    return ranged.mapInPandas(
        _score_partition(payload, key, k, model_name, str(model_version), candidates),
        OUTPUT_SCHEMA,
    )
