"""The reclake code location: one Definitions over the assets of every stage.

`dagster dev` (from the repo root) and `reclake demo` both load `defs` from here.
"""

import dagster as dg
from dagster_dbt import DbtCliResource
from dagster_pyspark import LazyPySparkResource

from orchestration.defs.evaluation.assets import evaluation_assets
from orchestration.defs.evaluation.poisoning import poisoning_assets
from orchestration.defs.evaluation.resources import JudgeResource
from orchestration.defs.features.assets import features_assets
from orchestration.defs.ingest.assets import ingest_assets
from orchestration.defs.llm.assets import llm_assets
from orchestration.defs.llm.resources import LLMResource
from orchestration.defs.serving.assets import serving_assets
from orchestration.defs.serving.resources import ServingResource
from orchestration.defs.serving.schedules import batch_scoring_job, champion_changed, nightly_batch_scoring
from orchestration.defs.training.assets import training_assets
from orchestration.defs.training.resources import TrainingResource
from orchestration.defs.transform.assets import dbt_project, transform_assets
from orchestration.defs.transform.checks import transform_checks
from orchestration.resources import LakeResource
from orchestration.settings import DBT_EXECUTABLE, configure_process_env
from orchestration.spark import spark_config

configure_process_env()

PIPELINE_JOB = "reclake_pipeline"
WAREHOUSE_JOB = "ingest_transform"


def build_defs(lake: LakeResource | None = None, llm: LLMResource | None = None,
               training: TrainingResource | None = None, serving: ServingResource | None = None,
               judge: JudgeResource | None = None) -> dg.Definitions:
    """Definitions bound to one data home; tests pass resources on a temporary home and small budgets."""
    return dg.Definitions(
        assets=[*ingest_assets, *transform_assets, *features_assets, *llm_assets, *training_assets, *serving_assets,
                *evaluation_assets, *poisoning_assets],
        asset_checks=[*transform_checks],
        jobs=[
            dg.define_asset_job(PIPELINE_JOB, selection=dg.AssetSelection.all(),
                                description="Every asset and check, for one date: raw files to marts, features, profiles, "
                                            "trained models, that date's recommendations and their judge evaluation."),
            dg.define_asset_job(WAREHOUSE_JOB, selection=dg.AssetSelection.groups("ingest", "transform"),
                                description="Raw files to the warehouse's checked tables and marts only."),
            batch_scoring_job,
        ],
        schedules=[nightly_batch_scoring],
        sensors=[champion_changed],
        resources={
            "lake": lake or LakeResource.from_env(),
            "llm": llm or LLMResource.from_env(),
            "training": training or TrainingResource.from_env(),
            "serving": serving or ServingResource.from_env(),
            "judge": judge or JudgeResource.from_env(),
            "spark": LazyPySparkResource(spark_config=spark_config()),
            "dbt": DbtCliResource(project_dir=dbt_project, dbt_executable=DBT_EXECUTABLE),
        },
        # DuckDB allows one writer per file and this machine class has 2 cores: run steps in one
        # process, one after another. Spark is the engine for data that outgrows this.
        executor=dg.in_process_executor,
    )


defs = build_defs()
