"""The real `reclake_pipeline` job run for a test, the `reclake` CLI, and what a run leaves: its
warehouse and its materializations."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

from support.data import TEST_MODEL_CACHE, TODAY

RECLAKE = str(Path(sys.executable).parent / "reclake")

CONTRACT_TABLES = [
    "fct_interactions",
    "quarantine_interactions",
    "splits",
    "dim_items",
    "dim_users",
    "feat_user_stats",
    "feat_item_stats",
]


@dataclass
class PipelineRun:
    result: object
    seconds: float
    home: Path

    @property
    def warehouse(self) -> Path:
        return self.home / "warehouse.duckdb"


@dataclass
class IncrementalRuns:
    cold: PipelineRun
    warm: PipelineRun  # the unchanged re-run
    edited: PipelineRun  # after one item title was edited
    data: Path  # the editable copy of the dataset
    dagster_home: Path  # the persistent instance all three ran on


def tiny_llm(**overrides):
    """The real embedded LLM on a tiny budget: a few new profiles per run, short outputs."""
    from orchestration.core.resources import LLMResource

    settings = dict(
        model_cache_dir=str(TEST_MODEL_CACHE),
        batch_size=4,
        max_items=3,
        max_users=3,
        item_max_new_tokens=32,
        user_max_new_tokens=48,
    )
    return LLMResource(**{**settings, **overrides})


def tiny_training(**overrides):
    """Real training on a short budget: a few epochs, so SASRec already beats popularity."""
    from orchestration.defs.training.resources import TrainingResource

    return TrainingResource(**{**dict(max_epochs=4, patience=2), **overrides})


def run_pipeline(
    home: Path,
    dataset: str = "ml-100k",
    data_dir: Path | None = None,
    rating_scale: str | None = None,
    llm=None,
    training=None,
    instance=None,
    protocols: bool = False,
) -> PipelineRun:
    """Materialize the real `reclake_pipeline` job into ``home`` and time it: on a fresh ephemeral
    Dagster instance (no history, so nothing is skipped as unchanged) unless one is given. The home
    reaches every step (dbt and Feast included) through the `lake` resource, not the environment.
    The protocol evaluations (every model refit once more, PROTOCOL_ASSETS) run only when
    `protocols` is set, at 1 epoch: the ML-100K fixture's run checks them, and the others need not
    pay for it."""
    import contextlib

    import dagster as dg

    from orchestration.core.resources import LakeResource
    from orchestration.definitions import PIPELINE_JOB, build_defs
    from orchestration.defs.training.protocols import PROTOCOL_ASSETS

    lake = LakeResource(
        home=str(home),
        dataset=dataset,
        data_dir=str(data_dir) if data_dir else None,
        rating_scale=rating_scale,
    )
    defs = build_defs(lake, llm or tiny_llm(), training or tiny_training())
    job = defs.resolve_job_def(PIPELINE_JOB)
    selection, run_config = None, {}
    if protocols:
        # their tests check the protocols' files and reports, not the models' quality: 1 epoch
        budget = {"config": {"max_epochs": 1, "patience": 1}}
        run_config = {"ops": {key: budget for key in PROTOCOL_ASSETS}}
    else:
        keys = defs.resolve_asset_graph().materializable_asset_keys
        selection = sorted(keys - {dg.AssetKey(key) for key in PROTOCOL_ASSETS}, key=str)
    started = time.monotonic()
    with (
        contextlib.nullcontext(instance)
        if instance is not None
        else dg.DagsterInstance.ephemeral() as instance
    ):
        result = job.execute_in_process(
            instance=instance,
            raise_on_error=False,
            partition_key=TODAY,
            asset_selection=selection,
            run_config=run_config,
        )
    return PipelineRun(result, time.monotonic() - started, home)


def query(warehouse: Path, sql: str, params=None):
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def materializations(run) -> dict:
    """Asset key -> metadata of each materialization in a pipeline run."""
    return {
        e.materialization.asset_key.to_user_string(): e.materialization.metadata
        for e in run.result.get_asset_materialization_events()
    }
