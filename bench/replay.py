"""Benchmark: the daily loop's cost per day, against the cold first run and against history size.

    .venv/bin/python bench/replay.py --part daily [--days 7]     # ML-100K, the demo's loop
    .venv/bin/python bench/replay.py --part scale [--rows 10000000] [--engine duckdb|spark]
    .venv/bin/python bench/replay.py --part invariant [--dataset ml-latest-small --one-drop] [--days 7]

daily: the demo's flow on a fresh home (history before the last N days as one backfill, training
and the first held-back day's lists, then N days one at a time, each `daily_update` + `serve_lists`
as the landing sensor runs them) and the seconds of each day split by stage (Dagster's step stats),
with the median day as a share of the cold first run (backfill + training + serving), measured in
the same process. Each day also scores the lists served on it (served_outcomes): the report gives
every model's next-day hit@10 over the replayed days against the `popularity_7d` shadow on the same
user-days (`--days 56`: the last 8 weeks of ML-100K), the best model by it, and the champion
leave-one-out chose. With RECLAKE_NIGHTLY_RETRAIN=1 every night also retrains by the retraining
policy and runs the gate (which reads these outcomes); the report lists each night's decision.

scale: does a day cost what the day holds, or what the history holds? The same file (ML-100K's
1998-04-17, 696 events) lands as the next day after two histories: ML-100K's (99k rows) and a
synthetic one (`reclake data synth`, default 10M rows); the ratio of the day's `daily_update`
seconds (ingest, dbt, checks, Feast; the LLM group left out, as synthetic items have no text worth
profiling) is the figure (goal <= 2).

invariant: a whole dataset's history as one run and its last N days one at a time, against one run
over every day: the seven contract tables' sorted rows hashed (invariant (a) beyond the test slice).

The LLM budget follows RECLAKE_LLM_* (e.g. RECLAKE_LLM_MAX_USERS=60 for a short run); the printed
header says what was used.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from orchestration.core.settings import apply_process_switches, parse_dbt_project

DAY = "1998-04-17"


def stage_seconds(instance, results) -> dict[str, float]:
    """Seconds per step over a day's runs (ingest, dbt_cleaning, checks, ..., batch_recommendations)."""
    seconds: dict[str, float] = {}
    for result in results:
        for step in instance.get_run_step_stats(result.run_id):
            seconds[step.step_key] = round(
                seconds.get(step.step_key, 0.0) + step.end_time - step.start_time, 2
            )
    return seconds


def daily(n_days: int, data_dir: str | None) -> dict:
    import dagster as dg

    from orchestration.cli.replay import Replay
    from orchestration.core.resources import LakeResource
    from orchestration.definitions import PIPELINE_JOB, build_defs

    home = Path(tempfile.mkdtemp(prefix="bench-replay-")) / "home"
    lake = LakeResource(home=str(home), dataset="ml-100k", data_dir=data_dir)
    defs = build_defs(lake)
    with dg.DagsterInstance.ephemeral() as instance:
        replay = Replay(defs, instance, lake)
        first = replay.cut.days[-n_days]
        started = time.monotonic()
        history = replay.history(first)
        served = replay.train_and_serve(first, PIPELINE_JOB)
        cold = time.monotonic() - started
        assert history.success and served.success, "the cold first run failed"
        backfill_s = sum(stage_seconds(instance, [history]).values())
        print(json.dumps({"cold_first_run_s": round(cold, 1), "history_steps_s": backfill_s}))
        days = []
        for day in replay.upcoming(n_days):
            row, results = replay.day(day)
            assert row, f"{day} failed"
            days.append({**row, "stages": stage_seconds(instance, results)})
            print(json.dumps({k: v for k, v in days[-1].items() if k != "run_id"}), flush=True)
        outcomes = outcomes_over(replay, [d["date"] for d in days])
    median = statistics.median(d["seconds"] for d in days)
    return {
        "outcomes": outcomes,
        # with RECLAKE_NIGHTLY_RETRAIN=1: each night's training and the gate's decision
        "nightly_gate": [
            {k: d.get(k) for k in ("date", "retrained", "champion", "gate")}
            for d in days
            if d.get("champion")
        ],
        "cold_first_run_s": round(cold, 1),
        "history_steps_s": round(backfill_s, 1),
        "days": days,
        "median_day_s": median,
        "median_day_share_of_cold_run": round(median / cold, 4),
        "goals": {"median_day_s <= 60": median <= 60, "share <= 0.05": median / cold <= 0.05},
    }


def outcomes_over(replay, dates: list[str]) -> dict:
    """Next-day outcomes over the replayed days: each model's hit@10 against `popularity_7d` on the
    same user-days (ratio and interval), the best model, and the champion leave-one-out picked."""

    from models import registry
    from models.evaluation.outcomes import against_baseline, read_per_user

    per_user = read_per_user(replay.paths.outcomes, dates[-1], len(dates))  # consecutive days
    if per_user.empty:
        return {}
    report = against_baseline(per_user, "popularity_7d")
    client = registry.connect(replay.paths.mlflow_dir)
    champion = registry.champion_version(client)
    best = max(report, key=lambda name: report[name]["hit_at_10"])
    return {
        "days_scored": int(per_user["date"].nunique()),
        "by_model": report,
        "best_by_next_day_hit_at_10": best,
        "leave_one_out_champion": champion.tags.get("model_name") if champion else None,
    }


def _history_home(root: Path, name: str, data: Path, engine: str):
    """A home whose landing zone holds a dataset's days, backfilled in one run (no LLM group)."""
    import dagster as dg

    from orchestration.cli.replay import Replay
    from orchestration.core.resources import LakeResource
    from orchestration.definitions import build_defs

    lake = LakeResource(home=str(root / name), dataset=str(data), engine=engine)
    defs = build_defs(lake)
    instance = dg.DagsterInstance.ephemeral()
    replay = Replay(defs, instance, lake)
    started = time.monotonic()
    history = replay.history("9999-12-31")
    assert history.success, f"{name}: history backfill failed"
    return replay, time.monotonic() - started


def fold_into_one_year(path: Path) -> None:
    """The generator's heaviest users run on for decades (3-day gaps between thousands of sessions):
    fold every timestamp into its first year, so the history is 365 days as a deployment's would be
    (sessions stay together; a few wrap around to the year's start)."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from orchestration.defs.ingest.synth import START

    table = pq.read_table(path)
    text = table.column("timestamp").to_pandas()
    seconds = pd.to_numeric(text, errors="coerce")  # a malformed row keeps its text
    folded = (START + (seconds - START) % (365 * 86_400)).astype("Int64").astype(str)
    text = text.where(seconds.isna(), folded)
    column = table.schema.get_field_index("timestamp")
    pq.write_table(table.set_column(column, "timestamp", pa.array(text, pa.string())), path)


def scale(rows: int, engine: str, ml100k: Path) -> dict:
    import duckdb
    import pandas as pd
    import pyarrow as pa
    import pyarrow.csv as pcsv

    from orchestration.core.partitions import next_day
    from orchestration.defs.ingest.landing import day_files
    from orchestration.defs.ingest.synth import SynthConfig, write_synthetic_dataset

    root = Path(tempfile.mkdtemp(prefix="bench-replay-scale-"))
    # ML-100K as a generic folder (so both homes read the same format)
    raw = pd.read_csv(ml100k / "ml-100k.inter", sep="\t", dtype=str)
    raw.columns = ["user_id", "item_id", "rating", "timestamp"]
    day_rows = raw[
        pd.to_datetime(raw["timestamp"].astype(int), unit="s").dt.date.astype(str) == DAY
    ]
    small = root / "ml100k-history"
    small.mkdir()
    raw.drop(day_rows.index).to_csv(small / "interactions.csv", index=False)
    big = root / "synthetic-history"
    config = SynthConfig(
        users=rows // 100, items=max(rows // 1000, 1000), interactions=rows, fmt="parquet"
    )
    write_synthetic_dataset(config, big)
    fold_into_one_year(big / "interactions.parquet")
    results = {}
    for name, data in (("ml100k", small), ("synthetic", big)):
        replay, backfill_s = _history_home(root, name, data, engine)
        # the same day's file, landed as the day after the history's last
        landed_day = next_day(replay.cut.days[-1])
        folder = replay.paths.landing_day(replay.spec.name, landed_day)
        folder.mkdir(parents=True)
        pcsv.write_csv(
            pa.Table.from_pandas(day_rows, preserve_index=False), folder / "interactions.csv"
        )
        assert day_files(replay.paths, replay.spec.name, landed_day, "interactions")
        run = {
            "job": "daily_update",
            "partition_key": landed_day,
            "run_key": landed_day,
            "asset_selection": _no_llm(replay.defs),
        }
        started = time.monotonic()
        result = replay.execute(run)
        assert result.success, f"{name}: the day failed"
        with duckdb.connect(str(replay.paths.warehouse), read_only=True) as con:
            history_rows = con.execute("select count(*) from fct_interactions").fetchone()[0]
        results[name] = {
            "history_rows": history_rows,
            "history_backfill_s": round(backfill_s, 1),
            "day_s": round(time.monotonic() - started, 2),
            "stages": stage_seconds(replay.instance, [result]),
        }
        print(json.dumps({name: results[name]}), flush=True)
    ratio = results["synthetic"]["day_s"] / results["ml100k"]["day_s"]
    return {**results, "engine": engine, "day_events": len(day_rows), "ratio": round(ratio, 2),
            "goal ratio <= 2": ratio <= 2}  # fmt: skip


def table_hashes(warehouse: Path) -> dict[str, str]:
    """md5 of every contract table's rows, sorted on all columns."""
    import duckdb

    tables = ["fct_interactions", "quarantine_interactions", "splits", "dim_items", "dim_users",
              "feat_user_stats", "feat_item_stats"]  # fmt: skip
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return {
            t: con.execute(
                f"select count(*) || ':' || md5(string_agg(r, '|' order by r)) from "
                f"(select cast(x as varchar) as r from main.{t} x)"
            ).fetchone()[0]
            for t in tables
        }


def invariant(dataset: str, data_dir: str | None, n_days: int, one_drop: bool) -> dict:
    """Invariant (a) on a whole dataset: the history as one run and then `n_days` days one at a
    time give the warehouse one run over every day gives (the warehouse job: ingest, dbt, checks).
    `one_drop` lands the history as one delivery (ml-latest-small's 8,215 days as partitions would
    spend over an hour in Dagster's bookkeeping)."""
    import dagster as dg

    from orchestration.cli.replay import Replay
    from orchestration.core.resources import LakeResource
    from orchestration.definitions import WAREHOUSE_JOB, build_defs
    from orchestration.defs.ingest.landing import land_day

    root = Path(tempfile.mkdtemp(prefix="bench-replay-invariant-"))
    homes = {}
    for name in ("one_run", "day_by_day"):
        lake = LakeResource(home=str(root / name), dataset=dataset, data_dir=data_dir)
        replay = Replay(build_defs(lake), dg.DagsterInstance.ephemeral(), lake)
        until = replay.cut.days[-n_days]
        if one_drop:  # the same landing zone on both sides: the history as one delivery
            replay.cut = replay.cut.history_in_one_drop(until)
        days = replay.cut.days
        cut = until if name == "day_by_day" else "9999-12-31"
        started = time.monotonic()
        runs = [replay.history(cut, WAREHOUSE_JOB)]
        for day in days[-n_days:] if name == "day_by_day" else []:
            land_day(replay.paths, replay.spec.name, replay.cut, day)
            runs.append(
                replay.execute({"job": WAREHOUSE_JOB, "partition_key": day, "run_key": day})
            )
        assert all(r.success for r in runs), f"{name}: a run failed"
        homes[name] = {"runs": len(runs), "seconds": round(time.monotonic() - started, 1),
                       "tables": table_hashes(replay.paths.warehouse)}  # fmt: skip
    same = homes["one_run"]["tables"] == homes["day_by_day"]["tables"]
    return {"dataset": dataset, "days": len(days), "replayed_days": n_days, "one_drop": one_drop, **homes,
            "identical": same}  # fmt: skip


def _no_llm(defs) -> list:
    import dagster as dg

    from orchestration.defs.ingest.sensors import DAILY_SELECTION

    graph = defs.resolve_asset_graph()
    keys = DAILY_SELECTION.resolve(graph) - dg.AssetSelection.groups("llm").resolve(graph)
    # feast_online_store reads the embeddings the llm group writes: it stays out with it
    return sorted((k for k in keys if k.to_user_string() != "feast_online_store"), key=str)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("daily", "scale", "invariant"), default="daily")
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument(
        "--one-drop", action="store_true", help="invariant: history as one delivery"
    )
    parser.add_argument("--engine", choices=("duckdb", "spark"), default="duckdb")
    parser.add_argument("--ml100k", default=os.environ.get("RECLAKE_DATA_DIR"))
    args = parser.parse_args()
    apply_process_switches()
    parse_dbt_project()
    llm = {k: v for k, v in os.environ.items() if k.startswith("RECLAKE_LLM_")}
    print(f"bench/replay.py --part {args.part}; LLM settings: {llm or 'defaults'}", flush=True)
    if args.part == "daily":
        report = daily(args.days, args.ml100k)
    elif args.part == "invariant":
        report = invariant(
            args.dataset, os.environ.get("RECLAKE_DATA_DIR"), args.days, args.one_drop
        )
    else:
        from orchestration.core.datasets import fetch_ml100k

        folder = Path(args.ml100k) if args.ml100k else fetch_ml100k(Path(tempfile.gettempdir()))
        report = scale(args.rows, args.engine, folder)
    print(json.dumps({k: v for k, v in report.items() if k != "days"}, indent=2))


if __name__ == "__main__":
    main()
