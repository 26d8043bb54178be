"""The data home's layout: every path a stage reads or writes, named once, each through one guard.

    lake = Lake(home)
    lake.warehouse                          warehouse.duckdb
    lake.profiles("user")                   lake/profiles/users/profiles.parquet
    lake.eval_topk("sasrec", "3")           lake/eval_topk/model_name=sasrec/model_version=3/
    lake.eval_timeline("sasrec", "3")       lake/eval_timeline/model_name=sasrec/model_version=3/
    lake.eval_cold_items("sasrec", "3")     lake/eval_cold_items/model_name=sasrec/model_version=3/
    lake.eval_cold_users("sasrec", "3")     lake/eval_cold_users/model_name=sasrec/model_version=3/
    lake.recommendations("2026-11-29")      lake/recommendations/date=2026-11-29/recommendations.parquet

Parts that come from configuration or input (dataset names, dates, model names) must be plain
names: ``inside_home`` refuses anything that could lead outside the home or into another stage's
folder. The Feast repo (feature_repo/data_sources.py) declares the files it reads itself, since it
imports nothing of reclake; tests/test_architecture.py checks that its paths are these.
"""

from __future__ import annotations

import os
from pathlib import Path


class OutsideHomeError(ValueError):
    """A path built from configuration would lead outside the data home."""


def inside_home(home: Path, *parts: str) -> Path:
    """``home/parts...``, each part one folder or file name. Parts come from configuration or input
    (dataset names, partition keys, model names), so one that is not a plain name (empty, ``.``,
    ``..``, a path separator, NUL) is refused: it could lead outside the home or into another stage's."""
    root = Path(os.path.abspath(home))
    separators = {os.sep, os.altsep} - {None}
    for part in parts:
        if part in ("", ".", "..") or "\0" in part or any(sep in part for sep in separators):
            raise OutsideHomeError(
                f"{'/'.join(parts)!r}: {part!r} is not a plain name; refusing a path that "
                f"could lead outside RECLAKE_HOME ({root})"
            )
    return root.joinpath(*parts)


class Lake:
    """Named paths under one data home (DESIGN.md "Contracts")."""

    def __init__(self, home: Path | str):
        self.home = Path(os.path.abspath(Path(home).expanduser()))

    def path(self, *parts: str) -> Path:
        return inside_home(self.home, *parts)

    # --- stores of the tools reclake runs ---
    @property
    def warehouse(self) -> Path:
        return self.path("warehouse.duckdb")

    @property
    def mlflow_dir(self) -> Path:  # sqlite tracking db + artifacts
        return self.path("mlflow")

    @property
    def feast_dir(self) -> Path:  # registry.db, online_store.db (feature_store.yaml names them)
        return self.path("feast")

    def feast_state(self, name: str) -> Path:  # what reclake remembers of its Feast loads
        return self.path("feast", f"{name}.json")

    @property
    def cache(self) -> Path:  # downloads (wheels, datasets, models) and the LLM cache
        return self.path("cache")

    @property
    def llm_cache(self) -> Path:
        return self.path("cache", "llm", "profiles.sqlite")

    @property
    def spark_tables(self) -> Path:
        """dbt-spark's schema `main` (spark.sql.warehouse.dir in the dbt profile, plus `main.db`)."""
        return self.path("lake", "spark", "warehouse", "main.db")

    # --- ingest ---
    def raw_dir(self, dataset: str) -> Path:
        return self.path("lake", "raw", dataset)

    def raw_table(self, dataset: str, table: str) -> Path:
        return self.path("lake", "raw", dataset, f"{table}.parquet")

    def raw_day(self, dataset: str, table: str, date: str) -> Path:
        """One landed day of a daily raw table (interactions, items) in the lake."""
        return self.path("lake", "raw", dataset, table, f"date={date}", "part.parquet")

    def landing(self, dataset: str) -> Path:
        """The landing zone: a producer drops each UTC day's files into date=YYYY-MM-DD/ here."""
        return self.path("landing", dataset)

    def landing_day(self, dataset: str, date: str) -> Path:
        return self.path("landing", dataset, f"date={date}")

    @property
    def replay_days(self) -> Path:  # one row per landed or replayed day (DESIGN.md contract)
        return self.path("lake", "replay", "days.parquet")

    def dataset_facts(self, dataset: str) -> Path:
        return self.path("lake", "raw", dataset, "dataset.json")

    def ingested_datasets(self) -> list[Path]:
        """The dataset.json of every dataset this home has ingested."""
        return sorted(self.path("lake", "raw").glob("*/dataset.json"))

    # --- features (Feast's file sources) ---
    def features(self, name: str) -> Path:  # user_stats, item_stats, training_set
        return self.path("lake", "features", f"{name}.parquet")

    # --- llm ---
    def profiles(self, kind: str) -> Path:  # kind: user | item
        return self.path("lake", "profiles", f"{kind}s", "profiles.parquet")

    def embeddings(self, kind: str) -> Path:  # kind: users | items
        return self.path("lake", "embeddings", f"{kind}.parquet")

    # --- training ---
    def eval_topk(self, model_name: str, version) -> Path:
        """A model version's test-time top-20 lists (a folder of parquet)."""
        return self.eval_protocol("eval_topk", model_name, version)

    def eval_timeline(self, model_name: str, version) -> Path:
        """A model version's top-20 lists under the timeline protocol, one per seed."""
        return self.eval_protocol("eval_timeline", model_name, version)

    def eval_cold_items(self, model_name: str, version) -> Path:
        """A model version's top-20 lists under the cold-item protocol, one per seed."""
        return self.eval_protocol("eval_cold_items", model_name, version)

    def eval_cold_users(self, model_name: str, version) -> Path:
        """A model version's top-20 lists under the cold-user protocol, per seed and context size."""
        return self.eval_protocol("eval_cold_users", model_name, version)

    def eval_protocol(self, folder: str, model_name: str, version) -> Path:
        return self.path("lake", folder, f"model_name={model_name}", f"model_version={version}")

    @property
    def suspicious_users(self) -> Path:
        return self.path("lake", "evaluation", "suspicious_users.parquet")

    def evaluator_split(self, name: str) -> Path:
        """The lists the judge and the simulated users are checked on (systems.parquet) and the
        refits behind them (models.json): the evaluator split's protocol."""
        return self.path("lake", "evaluator_split", name)

    def report(self, name: str) -> Path:  # model_comparison.json / .png
        return self.path("lake", "reports", name)

    # --- serving ---
    def recommendations(self, date: str) -> Path:
        return self.path("lake", "recommendations", f"date={date}", "recommendations.parquet")

    @property
    def latest_recommendations(self) -> Path:  # Feast's source of the user_recommendations view
        return self.path("lake", "recommendations", "latest", "user_recommendations.parquet")

    def recommendations_scratch(self, date: str) -> Path:  # Spark's parts before they are merged
        return self.path("lake", "recommendations", ".spark", f"date={date}")

    def shadow_lists(self, date: str) -> Path:  # one folder per model: scored, never served
        return self.path("lake", "shadow_recommendations", f"date={date}")

    def shadow_recommendations(self, date: str, model_name: str) -> Path:
        return self.shadow_lists(date) / f"model_name={model_name}" / "recommendations.parquet"

    # --- evaluation ---
    def outcome_days(self) -> list[str]:
        """The days whose lists have been scored by their events, oldest first."""
        root = self.path("lake", "outcomes")
        return (
            sorted(p.name.removeprefix("date=") for p in root.glob("date=*"))
            if root.is_dir()
            else []
        )

    def outcomes(self, date: str) -> Path:  # the lists of D (served, shadow) scored by D's events
        return self.path("lake", "outcomes", f"date={date}")

    def judge_evaluations(self, date: str) -> Path:
        return self.path("lake", "judge_evaluations", f"date={date}")

    def simulations(self, date: str) -> Path:
        return self.path("lake", "simulations", f"date={date}")

    def judge_probe(self, model_name: str) -> Path:
        """The tuned judge for one LLM (probe, calibration, the item vectors it reads): one .npz."""
        return self.path("lake", "judge_probe", model_name, "probe.npz")
