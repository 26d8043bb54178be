"""`reclake replay`: play the producer for a dataset with timestamps, day by day.

--history-until D   lands every day before D in the landing zone and runs them as one backfill
                    (one `daily_update` run over the range), then, when no champion exists yet,
                    trains and serves D once (the rest of the pipeline for partition D)
--days N            lands the next N days one at a time; each runs as the landing sensor would run
                    it (`daily_update` for the day, then `serve_lists` for the day after), and
                    prints one line: events, new items, new users, quarantined, profiles
                    refreshed, seconds. Each day's figures go to lake/replay/days.parquet.

Runs are in process on the instance under the data home, like `reclake demo`; a day already
ingested with the same files is not run again (the sensor's rule).
"""

from __future__ import annotations

import sys
import time
from datetime import date

import pyarrow as pa

from orchestration.core.files import write_parquet_atomic
from orchestration.core.paths import Lake
from orchestration.core.warehouse import connect

DAY_SCHEMA = pa.schema(
    [
        ("date", pa.string()),
        ("events", pa.int64()),
        ("new_items", pa.int64()),
        ("new_users", pa.int64()),
        ("quarantined", pa.int64()),
        ("profiles_refreshed", pa.int64()),
        ("seconds", pa.float64()),
        ("run_id", pa.string()),
    ]
)


def day_figures(paths: Lake, day: str) -> dict:
    """What one landed day brought, read back from the warehouse the day's run wrote."""
    with connect(paths.warehouse, read_only=True) as con:
        events = con.execute(
            "select count(*) from main.fct_interactions where landed_date = ?", [day]
        ).fetchone()[0]
        new_users = con.execute(
            "select count(*) from (select min(landed_date) as first_day from main.fct_interactions "
            "group by user_id) where first_day = ?",
            [day],
        ).fetchone()[0]
        quarantined = con.execute(
            "select count(*) from main.quarantine_interactions where landed_date = ?", [day]
        ).fetchone()[0]
    return {"events": events, "new_users": new_users, "quarantined": quarantined}


def record_day(paths: Lake, row: dict) -> None:
    """Upsert one day's row of lake/replay/days.parquet (a re-run replaces the day's row)."""
    import pyarrow.parquet as pq

    rows = []
    if paths.replay_days.exists():
        rows = [r for r in pq.read_table(paths.replay_days).to_pylist() if r["date"] != row["date"]]
    rows = sorted([*rows, row], key=lambda r: r["date"])
    write_parquet_atomic(pa.Table.from_pylist(rows, schema=DAY_SCHEMA), paths.replay_days)


def _execute(defs, instance, run: dict):
    from orchestration.core.runs import worker_tags

    job = defs.resolve_job_def(run["job"])
    return job.execute_in_process(
        instance=instance,
        raise_on_error=False,
        partition_key=run.get("partition_key"),
        tags={**worker_tags(), **run.get("tags", {}), "reclake/run_key": run["run_key"]},
    )


def _fail(result, what: str) -> int:
    from orchestration.cli.demo import step_failures

    print(f"reclake replay: {what} FAILED:", file=sys.stderr)
    for message in step_failures(result) or ["see the Dagster log above"]:
        print(f"  {message}", file=sys.stderr)
    return 1


def run_replay(history_until: str | None, n_days: int) -> int:
    import dagster as dg

    from orchestration.core.resources import LakeResource
    from orchestration.core.settings import (
        ensure_dagster_home,
        home_from_env,
        parse_dbt_project,
        resource_fields,
    )
    from orchestration.defs.ingest.landing import cut_into_days, ingested_days, land_day
    from orchestration.defs.ingest.sensors import day_hashes, due_runs

    home = home_from_env()
    instance_dir = ensure_dagster_home(home)
    lake = LakeResource(**resource_fields("lake", env_vars=False))
    spec, paths = lake.spec(), lake.paths
    print(f"reclake replay: cutting {spec.name} into UTC days ...", flush=True)
    cut = cut_into_days(spec, lake.source_folder())
    print(f"reclake replay: {len(cut.days)} days, {cut.days[0]} .. {cut.days[-1]}")
    parse_dbt_project()
    from orchestration.definitions import PIPELINE_JOB, defs

    with dg.DagsterInstance.from_config(str(instance_dir)) as instance:
        if history_until:
            date.fromisoformat(history_until)
            history = [d for d in cut.days if d < history_until]
            for day in history:
                land_day(paths, spec.name, cut, day)
            hashes, _ = day_hashes(paths, spec.name, {})
            due = due_runs({d: hashes[d] for d in history}, ingested_days(paths, spec.name))
            if due:
                started = time.monotonic()
                result = _execute(defs, instance, due[0])
                if not result.success:
                    return _fail(result, f"the history backfill {due[0]['run_key']}")
                print(
                    f"reclake replay: history {history[0]} .. {history[-1]} ({len(due[0]['days'])} "
                    f"days) ingested in one run, {time.monotonic() - started:.1f}s"
                )
            if not _has_champion(paths):
                print(f"reclake replay: no champion yet: training, then serving {history_until}")
                result = defs.resolve_job_def(PIPELINE_JOB).execute_in_process(
                    instance=instance,
                    raise_on_error=False,
                    partition_key=history_until,
                    asset_selection=_train_and_serve_keys(defs),
                )
                if not result.success:
                    return _fail(result, f"training and serving {history_until}")
        landed = set(ingested_days(paths, spec.name))
        upcoming = [d for d in cut.days if d not in landed][:n_days]
        print(
            f"{'date':<11}{'events':>7}{'new items':>10}{'new users':>10}{'quarantined':>12}"
            f"{'profiles':>9}{'seconds':>9}"
        )
        for day in upcoming:
            started = time.monotonic()
            land_day(paths, spec.name, cut, day)
            hashes, _ = day_hashes(paths, spec.name, {})
            runs = due_runs({day: hashes[day]}, ingested_days(paths, spec.name))
            results = []
            for run in runs:
                results.append(result := _execute(defs, instance, run))
                if not result.success:
                    return _fail(result, f"{run['job']} {run['run_key']}")
            row = {
                "date": day,
                **day_figures(paths, day),
                "new_items": cut.rows("items", day).num_rows,
                "profiles_refreshed": 0,  # LLM profiles are not refreshed by the daily run yet
                "seconds": round(time.monotonic() - started, 2),
                "run_id": results[0].run_id if results else None,
            }
            record_day(paths, row)
            print(
                f"{day:<11}{row['events']:>7}{row['new_items']:>10}{row['new_users']:>10}"
                f"{row['quarantined']:>12}{row['profiles_refreshed']:>9}{row['seconds']:>9.1f}",
                flush=True,
            )
    return 0


def _has_champion(paths: Lake) -> bool:
    from mlflow.exceptions import MlflowException

    from models import registry

    try:
        registry.connect(paths.mlflow_dir).get_model_version_by_alias(
            registry.REGISTERED_MODEL, registry.CHAMPION_ALIAS
        )
    except MlflowException:
        return False
    return True


def _train_and_serve_keys(defs) -> list:
    """Every asset but the daily ones (ingest, transform, llm, features ran in the backfill)."""
    import dagster as dg

    graph = defs.resolve_asset_graph()
    daily = dg.AssetSelection.groups("ingest", "transform", "features", "llm").resolve(graph)
    return sorted(set(graph.materializable_asset_keys) - set(daily), key=str)
