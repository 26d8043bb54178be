"""The reclake code location: one Definitions over the assets of every stage.

`dg dev` (from the repo root, through [tool.dg] in pyproject.toml) and `reclake demo` both load
`defs` from here. Resources are configured from RECLAKE_* variables, read and checked once by
core/settings.py; a bad value stops the load with a message naming the variable, the value and what
is allowed.
"""

import dagster as dg
from dagster_dbt import DbtCliResource
from dagster_pyspark import LazyPySparkResource

from orchestration.core.resources import LakeResource, LLMResource
from orchestration.core.runs import orphaned_runs
from orchestration.core.settings import (
    DBT_EXECUTABLE,
    apply_process_switches,
    check_environment,
    resource_fields,
)
from orchestration.core.spark import spark_config
from orchestration.defs.evaluation.assets import evaluation_assets
from orchestration.defs.evaluation.resources import JudgeResource, SimulatorResource
from orchestration.defs.features.assets import features_assets
from orchestration.defs.ingest.assets import ingest_assets
from orchestration.defs.ingest.sensors import (
    daily_update_job,
    landing_sensor,
    nightly_retrain_job,
    serve_lists_job,
)
from orchestration.defs.llm.assets import llm_assets
from orchestration.defs.serving.assets import serving_assets
from orchestration.defs.serving.resources import ServingResource
from orchestration.defs.serving.schedules import (
    batch_scoring_job,
    champion_changed,
    nightly_batch_scoring,
)
from orchestration.defs.training.assets import training_assets
from orchestration.defs.training.protocols import PROTOCOL_ASSETS
from orchestration.defs.training.resources import TrainingResource
from orchestration.defs.transform.assets import dbt_project, transform_assets
from orchestration.defs.transform.checks import transform_checks

apply_process_switches()

PIPELINE_JOB = "reclake_pipeline"
WAREHOUSE_JOB = "ingest_transform"


def build_defs(
    lake: LakeResource | None = None,
    llm: LLMResource | None = None,
    training: TrainingResource | None = None,
    serving: ServingResource | None = None,
    judge: JudgeResource | None = None,
    simulator: SimulatorResource | None = None,
) -> dg.Definitions:
    """Definitions bound to one data home; tests pass resources on a temporary home and small budgets.
    A resource not passed is configured from the environment (core/settings.py)."""
    check_environment()
    training = training or TrainingResource(**resource_fields("training"))
    pipeline = dg.AssetSelection.all()
    if not training.protocol_evaluations:  # RECLAKE_PROTOCOLS=0: the refits wait for their own run
        pipeline -= dg.AssetSelection.assets(*PROTOCOL_ASSETS)
    return dg.Definitions(
        assets=[
            *ingest_assets,
            *transform_assets,
            *features_assets,
            *llm_assets,
            *training_assets,
            *serving_assets,
            *evaluation_assets,
        ],
        asset_checks=[*transform_checks],
        jobs=[
            dg.define_asset_job(
                PIPELINE_JOB,
                selection=pipeline,
                description="Every asset and check, for one date: raw files to marts, features, profiles, "
                "trained models, that date's recommendations, their judge evaluation and simulated feedback.",
            ),
            dg.define_asset_job(
                WAREHOUSE_JOB,
                selection=dg.AssetSelection.groups("ingest", "transform"),
                description="Raw files to the warehouse's checked tables and marts only.",
            ),
            batch_scoring_job,
            daily_update_job,
            nightly_retrain_job,
            serve_lists_job,
        ],
        schedules=[nightly_batch_scoring],
        sensors=[champion_changed, orphaned_runs, landing_sensor],
        resources={
            "lake": lake or LakeResource(**resource_fields("lake")),
            "llm": llm or LLMResource(**resource_fields("llm")),
            "training": training,
            "serving": serving or ServingResource(**resource_fields("serving")),
            "judge": judge or JudgeResource(**resource_fields("judge")),
            "simulator": simulator or SimulatorResource(**resource_fields("simulator")),
            "spark": LazyPySparkResource(spark_config=spark_config()),
            "dbt": DbtCliResource(project_dir=dbt_project, dbt_executable=DBT_EXECUTABLE),
        },
        # DuckDB allows one writer per file and this machine class has 2 cores: run steps in one
        # process, one after another. Spark is the engine for data that outgrows this.
        executor=dg.in_process_executor,
    )


defs = build_defs()
