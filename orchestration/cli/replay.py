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

import json
import time
from datetime import date

import pyarrow as pa

from orchestration.core.datasets import DatasetError
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
        # the lists served on this day, scored by its events (lake/outcomes/date=D/summary.json)
        ("scored_users", pa.int64()),
        ("served_hit_at_10", pa.float64()),
        ("popularity_7d_hit_at_10", pa.float64()),
        # with RECLAKE_NIGHTLY_RETRAIN=1: how tonight's models were trained, the gate's decision
        ("retrained", pa.string()),
        ("champion", pa.string()),
        ("gate", pa.string()),
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


def outcome_figures(paths: Lake, day: str) -> dict:
    """The served list's and the 7-day-popularity shadow's next-day hit@10 on `day`, if scored."""
    path = paths.outcomes(day) / "summary.json"
    summary = json.loads(path.read_text()) if path.exists() else {"by_model": {}}
    models = summary["by_model"].values()
    served = next((m["hit_at_10"] for m in models if m["role"] == "served"), None)
    popular = summary["by_model"].get("popularity_7d", {}).get("hit_at_10")
    return {"scored_users": summary.get("n_users"), "served_hit_at_10": served,
            "popularity_7d_hit_at_10": popular}  # fmt: skip


def retrain_figures(paths: Lake, results) -> dict:
    """How the night's retrain trained each model (`training` metadata: full or warm) and the
    champion and gate decision after it; empty when the night had no retrain run."""
    from models import registry

    trained = {
        event.asset_key.path[-1].removesuffix("_model"): event.materialization.metadata[
            "training"
        ].value
        for result in results
        for event in result.get_asset_materialization_events()
        if "training" in event.materialization.metadata
    }
    if not trained:
        return {}
    client = registry.connect(paths.mlflow_dir)
    gate = registry.last_gate(client)
    if gate is None or gate["champion"] is None:
        return {"retrained": _listed(trained)}
    version = client.get_model_version(registry.REGISTERED_MODEL, str(gate["champion"]))
    return {
        "retrained": _listed(trained),
        "champion": f"{version.tags.get('model_name')} v{gate['champion']}",
        "gate": f"{gate['decision']}: {gate['reason']}",
    }


def _listed(trained: dict) -> str:
    return ", ".join(f"{name} {kind}" for name, kind in sorted(trained.items()))


def record_day(paths: Lake, row: dict) -> None:
    """Upsert one day's row of lake/replay/days.parquet (a re-run replaces the day's row)."""
    import pyarrow.parquet as pq

    rows = []
    if paths.replay_days.exists():
        rows = [r for r in pq.read_table(paths.replay_days).to_pylist() if r["date"] != row["date"]]
    rows = sorted([*rows, row], key=lambda r: r["date"])
    write_parquet_atomic(pa.Table.from_pylist(rows, schema=DAY_SCHEMA), paths.replay_days)


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

        graph = self.defs.resolve_asset_graph()
        daily = DAILY_SELECTION.resolve(graph)
        keys = sorted(set(graph.materializable_asset_keys) - set(daily), key=str)
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
            "profiles_refreshed": _refreshed(results),
            "seconds": round(time.monotonic() - started, 2),
            "run_id": results[0].run_id if results else None,
            **retrain_figures(self.paths, results),
        }
        record_day(self.paths, row)
        return row, results


def _refreshed(results) -> int:
    """Profiles the day's runs wrote anew (not from the LLM cache), items and users together."""
    return sum(
        int(event.materialization.metadata["refreshed"].value)
        for result in results
        for event in result.get_asset_materialization_events()
        if "refreshed" in event.materialization.metadata
    )


DAY_HEADER = (
    f"{'date':<11}{'events':>7}{'new items':>10}{'new users':>10}{'quarantined':>12}"
    f"{'profiles':>9}{'seconds':>9}   next-day hit@10 served / popularity_7d (users)"
)


def day_line(row: dict) -> str:
    line = (
        f"{row['date']:<11}{row['events']:>7}{row['new_items']:>10}{row['new_users']:>10}"
        f"{row['quarantined']:>12}{row['profiles_refreshed']:>9}{row['seconds']:>9.1f}"
    )
    if row.get("served_hit_at_10") is None:
        return line + "   (no list served)"
    popular = row.get("popularity_7d_hit_at_10")
    line = (
        f"{line}   {row['served_hit_at_10']:.3f} / "
        f"{'-' if popular is None else f'{popular:.3f}'} ({row['scored_users']})"
    )
    if row.get("champion"):  # a nightly retrain ran
        line += f"   champion {row['champion']} ({row['gate'].split(':')[0]})"
    return line


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
