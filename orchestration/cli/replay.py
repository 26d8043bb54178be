"""`reclake replay`: play the producer for a dataset with timestamps, day by day.

--history-until D   lands every day before D in the landing zone and runs them as one backfill
                    (one `daily_update` run over the range), then, when no champion exists yet,
                    trains and serves D once (the rest of the pipeline for partition D)
--history-in-one-drop
                    lands that history as one delivery on the day before D (one partition): for a
                    history of many years, whose thousands of daily partitions Dagster would record
                    one by one
--days N            lands the next N days one at a time; each runs as the landing sensor would run
                    it (`daily_update` for the day, then `serve_lists` for the day after), and
                    prints one line: events, new items, new users, quarantined, profiles
                    refreshed, seconds. Each day's figures go to lake/replay/days.parquet.

Runs are in process on the instance under the data home, like `reclake demo`; a day already
ingested with the same files is not run again (the sensor's rule).
"""

from __future__ import annotations

import time
from datetime import date

from orchestration.cli.day_rows import (
    DAY_HEADER,
    day_figures,
    day_line,
    outcome_figures,
    record_day,
    refreshed_profiles,
    retrain_figures,
)
from orchestration.core.datasets import DatasetError
from orchestration.core.paths import Lake


class Replay:
    """The landing zone of one dataset and the runs that land days in it, on one Dagster instance."""

    def __init__(self, defs, instance, lake):
        from orchestration.defs.ingest.landing import cut_into_days

        self.defs, self.instance, self.lake = defs, instance, lake
        self.spec, self.paths = lake.spec(), lake.paths
        print(f"reclake: cutting {self.spec.name} into UTC event days ...", flush=True)
        self.cut = cut_into_days(self.spec, lake.source_folder())
        self.file_hashes: dict = {}  # size, mtime, sha256 per landed file, as the sensor's cursor
        print(f"reclake: {len(self.cut.days)} days, {self.cut.days[0]} .. {self.cut.days[-1]}")

    def execute(self, run: dict):
        """One run as the landing sensor would ask for it (runs.py tags it as this worker's)."""
        from orchestration.core.runs import worker_tags

        job = self.defs.resolve_job_def(run["job"])
        return job.execute_in_process(
            instance=self.instance,
            raise_on_error=False,
            partition_key=run.get("partition_key"),
            asset_selection=run.get("asset_selection"),
            tags={**worker_tags(), **run.get("tags", {}), "reclake/run_key": run["run_key"]},
        )

    def due(self, days: list[str]) -> list[dict]:
        """The runs these landed days call for (the sensor's rule: new or changed files)."""
        from orchestration.core.settings import setting
        from orchestration.defs.ingest.landing import ingested_days
        from orchestration.defs.ingest.sensors import day_hashes, due_runs

        hashes, self.file_hashes = day_hashes(self.paths, self.spec.name, self.file_hashes)
        return due_runs(
            {d: hashes[d] for d in days},
            ingested_days(self.paths, self.spec.name),
            setting("RECLAKE_NIGHTLY_RETRAIN"),
        )

    def history(self, until: str, job: str | None = None):
        """Land every day before `until` and run them as one backfill (the sensor's job, or `job`);
        None when nothing changed."""
        from orchestration.defs.ingest.landing import land_day

        days = [d for d in self.cut.days if d < until]
        if not days:
            raise DatasetError(
                f"--history-until {until}: no event day of {self.spec.name} is before it"
            )
        for day in days:
            land_day(self.paths, self.spec.name, self.cut, day)
        due = self.due(days)
        return self.execute({**due[0], "job": job or due[0]["job"]}) if due else None

    def train_and_serve(self, day: str, pipeline_job: str):
        """The rest of the pipeline for served day `day`: training, that day's lists, their judge."""
        from orchestration.defs.ingest.sensors import DAILY_SELECTION

        daily = DAILY_SELECTION.resolve(self.defs.resolve_asset_graph())
        in_job = self.defs.resolve_job_def(pipeline_job).asset_layer.selected_asset_keys
        keys = sorted(set(in_job) - set(daily), key=str)
        run = {"job": pipeline_job, "partition_key": day, "asset_selection": keys}
        return self.execute({**run, "run_key": f"train and serve {day}"})

    def upcoming(self, n_days: int) -> list[str]:
        from orchestration.defs.ingest.landing import ingested_days

        last = max(ingested_days(self.paths, self.spec.name), default="")
        return [d for d in self.cut.days if d > last][:n_days]

    def day(self, day: str) -> tuple[dict, list]:
        """Land one day and run what it calls for; its row of lake/replay/days.parquet."""
        from orchestration.defs.ingest.landing import land_day

        started = time.monotonic()
        landed = land_day(self.paths, self.spec.name, self.cut, day)
        results = []
        for run in self.due([day]):
            results.append(result := self.execute(run))
            if not result.success:
                return {}, results
        row = {
            "date": day,
            **day_figures(self.paths, day),
            **outcome_figures(self.paths, day),
            "new_items": landed["new_items"],
            "profiles_refreshed": refreshed_profiles(results),
            "seconds": round(time.monotonic() - started, 2),
            "run_id": results[0].run_id if results else None,
            **retrain_figures(self.paths, results),
        }
        record_day(self.paths, row)
        return row, results


def fail(result, what: str) -> int:
    from orchestration.cli.reports import print_failure

    return print_failure(result, f"reclake: {what} FAILED:")


def replay_days(replay: Replay, n_days: int) -> int:
    """Land and run the next `n_days` days, one line each; 1 when a day's run fails."""
    print(DAY_HEADER)
    for day in replay.upcoming(n_days):
        row, results = replay.day(day)
        if not row:
            return fail(results[-1], f"the run of {day}")
        print(day_line(row), flush=True)
    return 0


def run_replay(history_until: str | None, n_days: int, one_drop: bool = False) -> int:
    import dagster as dg

    from orchestration.core.resources import LakeResource
    from orchestration.core.settings import (
        ensure_dagster_home,
        home_from_env,
        parse_dbt_project,
        resource_fields,
    )

    if history_until:
        date.fromisoformat(history_until)
    instance_dir = ensure_dagster_home(home_from_env())
    lake = LakeResource(**resource_fields("lake", env_vars=False))
    parse_dbt_project()
    from orchestration.definitions import PIPELINE_JOB, defs

    with dg.DagsterInstance.from_config(str(instance_dir)) as instance:
        replay = Replay(defs, instance, lake)
        if history_until and one_drop:
            replay.cut = replay.cut.history_in_one_drop(history_until)
        if history_until:
            started = time.monotonic()
            if (result := replay.history(history_until)) is not None:
                if not result.success:
                    return fail(result, "the history backfill")
                print(
                    f"reclake: the history before {history_until} ran as one backfill "
                    f"in {time.monotonic() - started:.1f}s"
                )
            if not _has_champion(lake.paths):
                print(f"reclake: no champion yet: training, then serving {history_until}")
                result = replay.train_and_serve(history_until, PIPELINE_JOB)
                if not result.success:
                    return fail(result, f"training and serving {history_until}")
        return replay_days(replay, n_days)


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
