"""Group `serving`: the champion's nightly top-K for every user, in the lake and in Feast.

batch_recommendations[D]   the lists served on day D: models:/reclake-recommender@champion scores each
                           user's history before D, over items seen before D
                           -> lake/recommendations/date=D/recommendations.parquet
                           (in process with torch, or on Spark with mapInPandas: RECLAKE_ENGINE)
online_recommendations[D]  that partition as one row per user -> Feast view `user_recommendations`
                           (online store; lake/recommendations/latest/ is its offline source)
"""

import json

import dagster as dg
import pandas as pd
import pyarrow as pa
from dagster_pyspark import LazyPySparkResource

from models import registry
from orchestration.core.feast import feature_store
from orchestration.core.files import (
    write_json_atomic,
    write_parquet_atomic,
)
from orchestration.core.partitions import daily_asset
from orchestration.core.resources import LakeResource
from orchestration.core.spark import engine_problem
from orchestration.defs.serving.resources import ServingResource
from orchestration.defs.serving.scoring import champion_or_failure, score_partition
from orchestration.defs.serving.shadow import shadow_recommendations

SERVING_CODE_VERSION = "2"  # 2: Spark scoring; popularity_bias counts every list an item is in


@daily_asset(
    key="batch_recommendations",
    group_name="serving",
    code_version=SERVING_CODE_VERSION,
    deps=["champion_model", "fct_interactions"],
    kinds={"pytorch", "parquet", "mlflow"},
    description="The lists served on day D: the champion's top-K unseen items for every "
    "user, from their history before D, among items seen before D.",
)
def batch_recommendations(
    context: dg.AssetExecutionContext,
    lake: LakeResource,
    serving: ServingResource,
    spark: LazyPySparkResource,
) -> dg.MaterializeResult:
    client = registry.connect(lake.paths.mlflow_dir)
    champion = champion_or_failure(client)
    if problem := engine_problem(lake.engine):
        raise dg.Failure(problem)
    session = (
        spark.spark_session if lake.engine == "spark" else None
    )  # the JVM starts only when used
    facts = [
        score_partition(context, lake, serving, champion, date, session)
        for date in context.partition_keys
    ]
    last = facts[-1]
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": sum(f["rows"] for f in facts),
            "users_scored": last["users_scored"],
            "k": serving.top_k,
            "engine": lake.engine,
            "model_name": champion.model_name,
            "model_version": champion.version,
            "mlflow_run_id": champion.run_id,
            "seconds": last["seconds"],
            "users_per_second": last["users_per_second"],
            "coverage": last["coverage"],
            "popularity_bias": last["popularity_bias"],
            "history_cutoff": last["history_cutoff"],
            "path": dg.MetadataValue.path(last["path"]),
            "content_sha256": last["sha256"],
            "partitions": dg.MetadataValue.json(
                {f["date"]: {k: f[k] for k in ("rows", "coverage", "sha256")} for f in facts}
            ),
        },
        data_version=dg.DataVersion("-".join(f["sha256"][:16] for f in facts)),
    )


@daily_asset(
    key="online_recommendations",
    group_name="serving",
    code_version=SERVING_CODE_VERSION,
    deps=[batch_recommendations, "feast_registry"],
    kinds={"feast", "sqlite"},
    description="The partition's lists pushed to Feast's online store (view user_recommendations).",
)
def online_recommendations(
    context: dg.AssetExecutionContext, lake: LakeResource
) -> dg.MaterializeResult:
    date = max(context.partition_keys)  # in a backfilled range, only the newest date goes online
    recs = pd.read_parquet(lake.paths.recommendations(date)).sort_values(["user_id", "rank"])
    per_user = (
        recs.groupby("user_id", sort=True)
        .agg(
            item_ids=("item_id", list),
            scores=("score", list),
            model_name=("model_name", "first"),
            model_version=("model_version", "first"),
        )
        .reset_index()
    )
    per_user["partition_date"] = date
    per_user["event_timestamp"] = pd.Timestamp(date, tz="UTC")
    state_path = lake.paths.feast_state("recommendations_pushed")
    newest = json.loads(state_path.read_text()).get("date") if state_path.exists() else None
    if newest is not None and newest > date:  # a backfill must not replace newer lists online
        context.log.info(f"online store holds {newest}, newer than {date}: not pushed")
        return dg.MaterializeResult(metadata={"pushed": False, "online_partition": str(newest)})
    table = pa.Table.from_pandas(per_user, preserve_index=False)
    write_parquet_atomic(table, lake.paths.latest_recommendations)
    store = feature_store(lake.home_path, lake.engine)
    store.write_to_online_store("user_recommendations", per_user)
    write_json_atomic({"date": date}, state_path)
    context.log.info(f"pushed {len(per_user)} users' lists for {date} to the online store")
    return dg.MaterializeResult(
        metadata={
            "pushed": True,
            "users": len(per_user),
            "online_partition": date,
            "model_version": str(per_user["model_version"].iloc[0]) if len(per_user) else "",
        }
    )


serving_assets = [batch_recommendations, online_recommendations, shadow_recommendations]
