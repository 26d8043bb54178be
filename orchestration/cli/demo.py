"""`reclake demo`: the whole pipeline on the instance under the data home, then what it made
(reports.py). By default the daily loop: the last days of the dataset held back, the history as one
backfill, the pipeline once, the held-back days replayed one by one, then the weekly retrain
(`--replay-days 0`: every asset for today's partition in one run, on the dataset as a snapshot)."""

from __future__ import annotations

import time

from orchestration.cli.reports import (
    check_lines,
    judge_lines,
    model_lines,
    print_failure,
    simulation_lines,
)
from orchestration.core.datasets import DatasetError
from orchestration.core.paths import Lake
from orchestration.core.settings import (
    ensure_dagster_home,
    home_from_env,
    parse_dbt_project,
    resource_fields,
)


def materialized_lines(result) -> list[str]:
    """One line per asset a run materialized: its row count, and whether it was kept as unchanged."""
    lines = []
    for event in result.all_events:
        if event.event_type_value == "ASSET_MATERIALIZATION":
            materialization = event.event_specific_data.materialization
            rows = materialization.metadata.get("dagster/row_count")
            count = f"{rows.value:>9,} rows" if rows is not None else " " * 14
            kept = "  (unchanged: not recomputed)" if "skipped" in materialization.metadata else ""
            lines.append(f"  {materialization.asset_key.to_user_string():<28}{count}{kept}")
    return lines


def _checks_line(results) -> str:
    checks = [
        e for r in results for e in r.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"
    ]
    failed = sum(not e.event_specific_data.passed for e in checks)
    return f"  {len(checks)} checks ran, {failed} failed"


def _failed(result, elapsed: float) -> int:
    return print_failure(result, f"\nreclake: the pipeline FAILED after {elapsed:.1f}s:")


def run_pipeline(replay_days: int = 0) -> int:
    """replay_days 0: one run of every asset for today's partition, on the whole dataset as a
    snapshot. N > 0: the daily loop (cli/replay.py) -- the dataset's last N days held back, the
    history before them landed and run as one backfill, the rest of the pipeline once (training,
    the first held-back day's lists, their judge), the N days replayed one by one, then the weekly
    full retrain on the whole dataset, whose leave-one-out table is the one printed."""
    home = home_from_env()
    instance_dir = ensure_dagster_home(home)
    from orchestration.core.resources import LakeResource

    lake = LakeResource(**resource_fields("lake", env_vars=False))
    spec = lake.spec()  # a bad dataset fails here, before anything runs
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
        if replay_days:
            return _daily_demo(defs, instance, lake, replay_days, PIPELINE_JOB, started)
        result = defs.resolve_job_def(PIPELINE_JOB).execute_in_process(
            instance=instance, raise_on_error=False, partition_key=today, tags=worker_tags()
        )
    elapsed = time.monotonic() - started
    if not result.success:
        return _failed(result, elapsed)
    print(f"\nreclake: materialized in {elapsed:.1f}s (run {result.run_id})")
    print("\n".join([*materialized_lines(result), _checks_line([result])]))
    _closing(home, [result], today)
    return 0


def _closing(home, results, served: str) -> None:
    lines = [line for r in results for line in check_lines(r)]
    print(
        "\n".join(
            lines + model_lines(home) + judge_lines(home, served) + simulation_lines(home, served)
        )
    )
    print(f"\nWarehouse: {Lake(home).warehouse}   Lake: {Lake(home).path('lake')}")
    print("Open the Dagster UI with `make ui`, then http://127.0.0.1:3000")


def _daily_demo(defs, instance, lake, n_days: int, pipeline_job: str, started: float) -> int:
    import dagster as dg

    from orchestration.cli.replay import Replay, replay_days
    from orchestration.defs.training.protocols import PROTOCOL_ASSETS

    replay = Replay(defs, instance, lake)
    if not 0 < n_days < len(replay.cut.days):
        raise DatasetError(
            f"--replay-days {n_days}: {lake.spec().name} has {len(replay.cut.days)} event days; "
            "hold back fewer"
        )
    first_held_back = replay.cut.days[-n_days]
    print(
        f"reclake: the history before {first_held_back} lands as one backfill run ...", flush=True
    )
    history = replay.history(first_held_back)
    if history is not None:
        if not history.success:
            return _failed(history, time.monotonic() - started)
        print("\n".join(materialized_lines(history)))
    print(
        f"reclake: training, then serving {first_held_back} and judging its lists ...", flush=True
    )
    served = replay.train_and_serve(first_held_back, pipeline_job)
    if not served.success:
        return _failed(served, time.monotonic() - started)
    print("\n".join(materialized_lines(served)))
    print(f"\nreclake: {n_days} days replayed, each as the landing sensor runs it:")
    if code := replay_days(replay, n_days):
        return code
    print(
        "reclake: the weekly retrain, on the whole dataset (the retraining policy picks a full "
        "retrain or a warm start for SASRec and LLM-SASRec) ...",
        flush=True,
    )
    # the training group, its Feast training set, and the tuned judge the two-stage ranker reads;
    # not the timeline and cold-item protocols, evaluations that ran with the first training
    retrain = (
        dg.AssetSelection.groups("training")
        | dg.AssetSelection.assets("training_set", "judge_probe")
    ) - dg.AssetSelection.assets(*PROTOCOL_ASSETS)
    training = sorted(retrain.resolve(defs.resolve_asset_graph()), key=str)
    retrained = replay.execute(
        {"job": pipeline_job, "partition_key": first_held_back, "asset_selection": training,
         "run_key": "weekly retrain"}
    )  # fmt: skip
    if not retrained.success:
        return _failed(retrained, time.monotonic() - started)
    results = [r for r in (history, served, retrained) if r is not None]
    print(f"\nreclake: done in {time.monotonic() - started:.1f}s")
    print(_checks_line(results))
    _closing(lake.home_path, results, first_held_back)
    return 0
