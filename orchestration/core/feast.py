"""Feast's store on one data home, for the stages that read or write it (features, serving).

feature_repo/feature_store*.yaml name their paths as ${RECLAKE_HOME}/feast/...; Feast's own loader
expands them from the process environment. Here the yaml is expanded with this home explicitly and
handed to Feast as a RepoConfig, so two homes can be open in one process and nothing is written to
the environment. `feast apply` (a subprocess, as a user runs it) gets the home in its own environment.
"""

from __future__ import annotations

import os
from pathlib import Path
from string import Template

import yaml

from orchestration.core.paths import Lake
from orchestration.core.settings import FEATURE_REPO_DIR, setting


def store_yaml(engine: str) -> Path:
    """The repo's config for the engine: Feast's DuckDB offline store, or its Spark one."""
    return FEATURE_REPO_DIR / ("feature_store.spark.yaml" if engine == "spark" else "feature_store.yaml")


def feast_variables(home: Path, engine: str) -> dict[str, str]:
    """What the repo's yaml files and data_sources.py read from their environment."""
    return {"RECLAKE_HOME": str(Lake(home).home), "RECLAKE_ENGINE": engine,
            "RECLAKE_SPARK_MASTER": setting("RECLAKE_SPARK_MASTER")}


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

