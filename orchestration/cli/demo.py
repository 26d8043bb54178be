"""`reclake demo`: materialize every asset and check for today's partition in one in-process
Dagster run on the instance under the data home, then say what it made (reports.py)."""

from __future__ import annotations

import sys
import time

from orchestration.cli.reports import check_lines, judge_lines, model_lines, simulation_lines
from orchestration.core.paths import Lake
from orchestration.core.settings import (
    ensure_dagster_home,
    home_from_env,
    parse_dbt_project,
    resource_fields,
)


def step_failures(result) -> list[str]:
    """The user-facing message of each failed step: the innermost error, not the whole traceback."""
    messages = []
    for event in result.all_events:
        if event.event_type_value != "STEP_FAILURE":
            continue
        error = event.event_specific_data.error
        while error.cause is not None:
            error = error.cause
        text = error.message.strip()
        if event.event_specific_data.user_failure_data is not None:
            text = event.event_specific_data.user_failure_data.description or text
        messages.append(f"{event.step_key}: {text}")
    return messages


def run_pipeline() -> int:
    home = home_from_env()
    instance_dir = ensure_dagster_home(home)
    from orchestration.core.resources import LakeResource

    spec = LakeResource(
        **resource_fields("lake", env_vars=False)
    ).spec()  # a bad dataset fails here, before anything runs
    print(f"reclake: dataset {spec.name}, data home {home}")
    print("reclake: parsing the dbt project ...", flush=True)
    parse_dbt_project()

    import dagster as dg

    from orchestration.core.partitions import daily_partitions
    from orchestration.definitions import PIPELINE_JOB, defs

    today = daily_partitions.get_last_partition_key()  # the serving group scores today's partition
    started = time.monotonic()
    from orchestration.core.runs import mark_orphaned_runs, wait_for_other_runs, worker_tags

    with dg.DagsterInstance.from_config(str(instance_dir)) as instance:
        for run_id in mark_orphaned_runs(instance):
            print(f"reclake: run {run_id} was left STARTED by a killed process: marked failed")
        wait_for_other_runs(instance)  # e.g. a run launched from the UI, or the champion sensor's
        result = defs.resolve_job_def(PIPELINE_JOB).execute_in_process(
            instance=instance, raise_on_error=False, partition_key=today, tags=worker_tags()
        )
    elapsed = time.monotonic() - started
    if not result.success:
        print(f"\nreclake: the pipeline FAILED after {elapsed:.1f}s:", file=sys.stderr)
        for message in step_failures(result) or ["see the Dagster log above"]:
            print(f"  {message}", file=sys.stderr)
        return 1

    print(f"\nreclake: materialized in {elapsed:.1f}s (run {result.run_id})")
    for event in result.all_events:
        if event.event_type_value == "ASSET_MATERIALIZATION":
            materialization = event.event_specific_data.materialization
            rows = materialization.metadata.get("dagster/row_count")
            count = f"{rows.value:>9,} rows" if rows is not None else " " * 14
            kept = "  (unchanged: not recomputed)" if "skipped" in materialization.metadata else ""
            print(f"  {materialization.asset_key.to_user_string():<28}{count}{kept}")
    checks = [e for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    print(
        f"  {len(checks)} checks ran, {sum(not e.event_specific_data.passed for e in checks)} failed"
    )
    print(
        "\n".join(
            check_lines(result)
            + model_lines(home)
            + judge_lines(home, today)
            + simulation_lines(home, today)
        )
    )
    print(f"\nWarehouse: {Lake(home).warehouse}   Lake: {Lake(home).path('lake')}")
    print("Open the Dagster UI with `make ui`, then http://127.0.0.1:3000")
    return 0
