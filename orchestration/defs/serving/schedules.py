"""When the serving group runs: nightly, and whenever the champion alias moves."""

from datetime import UTC, datetime

import dagster as dg
from mlflow.exceptions import MlflowException

from models import registry
from orchestration.core.partitions import daily_partitions
from orchestration.core.resources import LakeResource
from orchestration.core.settings import setting

# the nightly stages: this stage's assets, the evaluation group's judge and simulated users, named, not
# imported (the tuned judge, judge_probe, is re-fitted by the pipeline when its inputs change, not nightly)
batch_scoring_job = dg.define_asset_job(
    "batch_scoring",
    selection=dg.AssetSelection.groups("serving")
    | dg.AssetSelection.assets("judge_evaluations", "simulated_feedback"),
    description="Score every user with the champion for one date, push the lists to Feast, judge them, "
    "show them to simulated users.",
)

# "HH:MM" in UTC; RECLAKE_NIGHTLY_AT moves it.
_hour, _minute = setting("RECLAKE_NIGHTLY_AT")


@dg.schedule(
    name="nightly_batch_scoring",
    job=batch_scoring_job,
    cron_schedule=daily_partitions.get_cron_schedule(minute_of_hour=_minute, hour_of_day=_hour),
    execution_timezone=daily_partitions.timezone,
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def nightly_batch_scoring(context: dg.ScheduleEvaluationContext):
    """The newest date at the tick's time (the day it runs on: today's partition exists), once per
    date (the run key): what build_schedule_from_partitioned_job did, without the deprecated
    run_request_for_partition it calls."""
    with dg.partition_loading_context(effective_dt=context.scheduled_execution_time):
        date = daily_partitions.get_last_partition_key()
    if date is None:
        return dg.SkipReason("The job's PartitionsDefinition has no partitions")
    return dg.RunRequest(run_key=date, partition_key=date, job_name=batch_scoring_job.name)


@dg.sensor(
    job=batch_scoring_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Re-score today's partition when reclake-recommender@champion points at another version.",
)
def champion_changed(context: dg.SensorEvaluationContext, lake: LakeResource):
    client = registry.connect(lake.paths.mlflow_dir)
    try:
        version = str(
            client.get_model_version_by_alias(
                registry.REGISTERED_MODEL, registry.CHAMPION_ALIAS
            ).version
        )
    except MlflowException:
        return dg.SkipReason("no champion yet")
    if context.cursor == version:
        return dg.SkipReason(f"champion is still v{version}")
    previous = context.cursor
    context.update_cursor(version)
    if previous is None:
        return dg.SkipReason(f"first look: champion is v{version} (the nightly schedule scores it)")
    today = datetime.now(UTC).date().isoformat()
    return dg.RunRequest(
        run_key=f"champion-v{version}-{today}",
        partition_key=today,
        tags={"reason": f"champion moved v{previous} -> v{version}"},
    )
