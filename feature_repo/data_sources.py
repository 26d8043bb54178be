"""Parquet files the `features` assets export from the dbt marts (lake/features/ under RECLAKE_HOME).

FileSources for the DuckDB offline store (feature_store.yaml); with RECLAKE_ENGINE=spark the same
files as SparkSources, which Feast's Spark offline store requires (feature_store.spark.yaml).
"""

import os
from pathlib import Path

from feast import FileSource
from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import SparkSource

ENGINE = os.environ.get("RECLAKE_ENGINE", "duckdb").strip().lower()


def parquet_source(*, name: str, path: str, timestamp_field: str, description: str):
    if ENGINE == "spark":
        return SparkSource(
            name=name,
            path=path,
            file_format="parquet",
            timestamp_field=timestamp_field,
            description=description,
        )
    return FileSource(
        name=name, path=path, timestamp_field=timestamp_field, description=description
    )


# The data home, as feature_store.yaml reads it (${RECLAKE_HOME}); reclake passes it to `feast apply`.
# No default of its own: `feast apply` runs this file from inside feature_repo/, where a relative
# default would point elsewhere than reclake's (./.reclake from where reclake runs).
if not os.environ.get("RECLAKE_HOME"):
    raise RuntimeError(
        "RECLAKE_HOME is not set: export it before using the Feast CLI on this repo, e.g. "
        "`export RECLAKE_HOME=$PWD/.reclake` from the reclake checkout"
    )
RECLAKE_HOME = Path(os.environ["RECLAKE_HOME"]).expanduser()
FEATURES_DIR = RECLAKE_HOME.resolve() / "lake" / "features"

user_stats_source = parquet_source(
    name="user_stats_source",
    path=str(FEATURES_DIR / "user_stats.parquet"),
    timestamp_field="event_timestamp",
    description="dbt mart feat_user_stats: point-in-time user stats from train interactions",
)
item_stats_source = parquet_source(
    name="item_stats_source",
    path=str(FEATURES_DIR / "item_stats.parquet"),
    timestamp_field="event_timestamp",
    description="dbt mart feat_item_stats: point-in-time item stats from train interactions",
)

EMBEDDINGS_DIR = RECLAKE_HOME.resolve() / "lake" / "embeddings"

item_text_embedding_source = parquet_source(
    name="item_text_embedding_source",
    path=str(EMBEDDINGS_DIR / "items.parquet"),
    timestamp_field="event_timestamp",
    description="all-MiniLM-L6-v2 vectors of each item's LLM profile and title (llm group)",
)
user_profile_embedding_source = parquet_source(
    name="user_profile_embedding_source",
    path=str(EMBEDDINGS_DIR / "users.parquet"),
    timestamp_field="event_timestamp",
    description="all-MiniLM-L6-v2 vectors of each user's LLM profile, stamped at their last train interaction",
)

RECOMMENDATIONS_DIR = RECLAKE_HOME.resolve() / "lake" / "recommendations"

user_recommendations_source = parquet_source(
    name="user_recommendations_source",
    path=str(RECOMMENDATIONS_DIR / "latest" / "user_recommendations.parquet"),
    timestamp_field="event_timestamp",
    description="the newest nightly batch_recommendations partition, one row per user (serving group)",
)
