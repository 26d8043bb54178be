"""Feast's store on one data home, for the stages that read or write it (features, training, serving),
and the point-in-time lookup of the ranking features (`ranking_stats`).

feature_repo/feature_store*.yaml name their paths as ${RECLAKE_HOME}/feast/...; Feast's own loader
expands them from the process environment. Here the yaml is expanded with this home explicitly and
handed to Feast as a RepoConfig, so two homes can be open in one process and nothing is written to
the environment. `feast apply` (a subprocess, as a user runs it) gets the home in its own environment.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from string import Template

import numpy as np
import pandas as pd
import yaml

from orchestration.core.paths import Lake
from orchestration.core.settings import FEATURE_REPO_DIR, setting

TRAINING_SERVICE = "ranking_v1"  # the feature service models train and rank on
# Predict an event at t with features from strictly before t: a stats row stamped t includes t.
BEFORE_EVENT = timedelta(microseconds=1)


def store_yaml(engine: str) -> Path:
    """The repo's config for the engine: Feast's DuckDB offline store, or its Spark one."""
    return FEATURE_REPO_DIR / (
        "feature_store.spark.yaml" if engine == "spark" else "feature_store.yaml"
    )


def feast_variables(home: Path, engine: str) -> dict[str, str]:
    """What the repo's yaml files and data_sources.py read from their environment."""
    return {
        "RECLAKE_HOME": str(Lake(home).home),
        "RECLAKE_ENGINE": engine,
        "RECLAKE_SPARK_MASTER": setting("RECLAKE_SPARK_MASTER"),
    }


def feast_command_env(home: Path, engine: str) -> dict[str, str]:
    """The environment of a `feast` CLI subprocess on this home."""
    return {**os.environ, **feast_variables(home, engine)}


def feature_store(home: Path, engine: str = "duckdb"):
    """A FeatureStore on this data home, configured by the engine's yaml with its variables expanded."""
    from feast import FeatureStore
    from feast.repo_config import RepoConfig

    path = store_yaml(engine)
    raw = yaml.safe_load(Template(path.read_text()).safe_substitute(feast_variables(home, engine)))
    config = RepoConfig(**raw)
    config.repo_path = FEATURE_REPO_DIR
    return FeatureStore(repo_path=str(FEATURE_REPO_DIR), config=config)


def bind_ranking_stats(model, home: Path, engine: str, moment) -> None:
    """Give a model that reads Feast stats (two_stage: it has a `stats` slot) a lookup of its feature
    service as of just before `moment`, the way its features were built for training; other models
    are left alone."""
    if not hasattr(model, "stats"):
        return
    store, service = feature_store(home, engine), model.config.feature_service
    model.stats = lambda users, items: ranking_stats(
        store, users, items, moment - BEFORE_EVENT, service
    )


def ranking_stats(
    store, user_ids: np.ndarray, item_ids: np.ndarray, as_of, service: str = TRAINING_SERVICE
) -> pd.DataFrame:
    """A feature service's features (ranking_v1: user_stats, item_stats) for (user, item) rows, each as
    of `as_of` (one moment, or one a row), point in time; one column a feature (`view__feature`), rows
    in the given order. Each view is joined on its own distinct (key, moment) pairs: a nightly batch
    asks for ~1k users and ~2k items, not for 50k (user, item) rows."""
    rows = pd.DataFrame(
        {"user_id": np.asarray(user_ids, dtype=str), "item_id": np.asarray(item_ids, dtype=str)}
    )
    moments = pd.DatetimeIndex(as_of if np.ndim(as_of) else [as_of] * len(rows))
    rows["event_timestamp"] = (
        moments.tz_localize("UTC") if moments.tz is None else moments.tz_convert("UTC")
    )
    out = pd.DataFrame(index=rows.index)
    for projection in store.get_feature_service(service).feature_view_projections:
        keys = store.get_feature_view(projection.name).join_keys + ["event_timestamp"]
        entities = rows[keys].drop_duplicates().reset_index(drop=True)
        joined = store.get_historical_features(
            entity_df=entities,
            features=[f"{projection.name}:{f.name}" for f in projection.features],
            full_feature_names=True,
        ).to_df()
        joined["event_timestamp"] = pd.to_datetime(joined["event_timestamp"], utc=True)
        columns = [f"{projection.name_to_use()}__{f.name}" for f in projection.features]
        out[columns] = (
            rows[keys].merge(joined[keys + columns], on=keys, how="left")[columns].to_numpy()
        )
    return out
